package issuer

import (
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// BeforeSessionWrite runs f between reading and writing the session store.
func BeforeSessionWrite(s *Server, f func()) { s.beforeSessionWrite = f }

// RecordCosts makes s record the bcrypt cost of every hash a login is compared with, and
// returns a function that takes the costs recorded so far.
func RecordCosts(s *Server) func() []int {
	var mu sync.Mutex
	var costs []int
	s.compare = func(hash, password []byte) error {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			c = -1
		}
		mu.Lock()
		costs = append(costs, c)
		mu.Unlock()
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		out := costs
		costs = nil
		return out
	}
}

// VerifierBuilds is how many verifiers s has built since its Handler was made.
func VerifierBuilds(s *Server) int64 { return s.views.builds.Load() }

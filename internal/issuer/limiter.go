package issuer

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// Failed-login limits: a user may fail 5 times in a burst, then once every 12 s; an address
// 20 times, then once every 3 s. Successful logins cost nothing.
var (
	userLimit    = rate.Every(12 * time.Second)
	userBurst    = 5
	addressLimit = rate.Every(3 * time.Second)
	addressBurst = 20
)

// maxTracked bounds the limiter's memory; past it the oldest state is forgotten wholesale,
// which errs toward letting logins through rather than growing without bound.
const maxTracked = 10000

type limiter struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	users map[string]*rate.Limiter
	addrs map[string]*rate.Limiter
}

func newLimiter(c clock.PassiveClock) *limiter {
	return &limiter{clock: c, users: map[string]*rate.Limiter{}, addrs: map[string]*rate.Limiter{}}
}

func get(m map[string]*rate.Limiter, key string, limit rate.Limit, burst int) *rate.Limiter {
	l, ok := m[key]
	if !ok {
		if len(m) >= maxTracked {
			clear(m)
		}
		l = rate.NewLimiter(limit, burst)
		m[key] = l
	}
	return l
}

// reserve charges one attempt to the user and the address before the password is checked,
// so concurrent guesses cannot all pass the check before any is counted. It returns how long
// to wait when either is out of attempts (nothing is charged then), or a refund to call when
// the attempt succeeds: successful logins cost nothing.
func (l *limiter) reserve(policy, user, addr string) (wait time.Duration, refund func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	lims := []*rate.Limiter{get(l.users, policy+"\x00"+user, userLimit, userBurst), get(l.addrs, addr, addressLimit, addressBurst)}
	for _, lim := range lims {
		if tokens := lim.TokensAt(now); tokens < 1 {
			need := time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
			wait = max(wait, need)
		}
	}
	if wait > 0 {
		return wait, nil
	}
	rs := make([]*rate.Reservation, 0, len(lims))
	for _, lim := range lims {
		rs = append(rs, lim.ReserveN(now, 1))
	}
	return 0, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		t := l.clock.Now()
		for _, r := range rs {
			r.CancelAt(t)
		}
	}
}

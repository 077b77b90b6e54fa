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

// blocked says how long the user or address must wait before another attempt; 0 if they may
// try now.
func (l *limiter) blocked(policy, user, addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	wait := time.Duration(0)
	for _, lim := range []*rate.Limiter{get(l.users, policy+"\x00"+user, userLimit, userBurst), get(l.addrs, addr, addressLimit, addressBurst)} {
		if tokens := lim.TokensAt(now); tokens < 1 {
			need := time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
			wait = max(wait, need)
		}
	}
	return wait
}

// failed records a failed attempt against the user and the address.
func (l *limiter) failed(policy, user, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	get(l.users, policy+"\x00"+user, userLimit, userBurst).AllowN(now, 1)
	get(l.addrs, addr, addressLimit, addressBurst).AllowN(now, 1)
}

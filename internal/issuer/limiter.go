package issuer

import (
	"container/list"
	"net/netip"
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

// maxTracked bounds each of the limiter's tables (users, addresses), so a flood of made-up
// user names or addresses cannot grow memory without bound. Forgetting an entry that is back at
// its full burst changes nothing (a new one starts there too), so those go first; an entry
// still short of its burst is forgotten only when every tracked entry is, oldest first, so a
// flood can at worst free the stalest lockout, never all of them at once.
const maxTracked = 10000

// limiter charges failed-login attempts per user and per client address.
type limiter struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	users *table
	addrs *table
}

func newLimiter(c clock.PassiveClock) *limiter { return newLimiterSized(c, maxTracked) }

func newLimiterSized(c clock.PassiveClock, size int) *limiter {
	return &limiter{clock: c, users: newTable(userLimit, userBurst, size), addrs: newTable(addressLimit, addressBurst, size)}
}

// table is one bounded set of token buckets, ordered by last use.
type table struct {
	limit rate.Limit
	burst int
	size  int
	lru   *list.List // of *bucket, the most recently used at the front
	byKey map[string]*list.Element
}

type bucket struct {
	key string
	lim *rate.Limiter
}

func newTable(limit rate.Limit, burst, size int) *table {
	return &table{limit: limit, burst: burst, size: max(size, 1), lru: list.New(), byKey: map[string]*list.Element{}}
}

// tokens is what key has left at now. A lookup never creates an entry: an unknown key has its
// full burst. A known key counts as used, so a lockout that is still being hammered is the last
// to be forgotten.
func (t *table) tokens(key string, now time.Time) float64 {
	el, ok := t.byKey[key]
	if !ok {
		return float64(t.burst)
	}
	t.lru.MoveToFront(el)
	return el.Value.(*bucket).lim.TokensAt(now)
}

// charge takes one attempt from key's bucket, tracking it if it was not.
func (t *table) charge(key string, now time.Time) *rate.Reservation {
	el, ok := t.byKey[key]
	if ok {
		t.lru.MoveToFront(el)
	} else {
		for t.lru.Len() >= t.size {
			t.evict(now)
		}
		el = t.lru.PushFront(&bucket{key: key, lim: rate.NewLimiter(t.limit, t.burst)})
		t.byKey[key] = el
	}
	return el.Value.(*bucket).lim.ReserveN(now, 1)
}

// evict forgets the least recently used entry that is back at its full burst, or, when every
// entry is short of it, the least recently used one. The scan starts at the stalest entry,
// the one most likely to have refilled, so it usually stops at once; a full scan happens only
// while every entry is limiting, and each such insertion follows a bcrypt comparison that costs
// far more.
func (t *table) evict(now time.Time) {
	victim := t.lru.Back()
	for el := victim; el != nil; el = el.Prev() {
		if el.Value.(*bucket).lim.TokensAt(now) >= float64(t.burst) {
			victim = el
			break
		}
	}
	t.lru.Remove(victim)
	delete(t.byKey, victim.Value.(*bucket).key)
}

func (t *table) len() int { return t.lru.Len() }

// addressKey is the per-address limit's key for a client IP. An IPv4 address counts alone, also
// when it arrives IPv4-mapped in IPv6. An IPv6 address counts by its /64: one subscriber or host
// is usually handed a whole /64, and could otherwise step through 2^64 addresses, each with a
// fresh burst. Anything that does not parse counts as itself.
func addressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// reserve charges one attempt to the user and the address before the password is checked,
// so concurrent guesses cannot all pass the check before any is counted. It returns how long
// to wait when either is out of attempts (nothing is charged then), or a refund to call when
// the attempt succeeds: successful logins cost nothing.
func (l *limiter) reserve(policy, user, addr string) (wait time.Duration, refund func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	type charge struct {
		t   *table
		key string
	}
	charges := [...]charge{{l.users, policy + "\x00" + user}, {l.addrs, addressKey(addr)}}
	for _, c := range charges {
		if tokens := c.t.tokens(c.key, now); tokens < 1 {
			need := time.Duration((1 - tokens) / float64(c.t.limit) * float64(time.Second))
			wait = max(wait, need)
		}
	}
	if wait > 0 {
		return wait, nil
	}
	rs := make([]*rate.Reservation, 0, len(charges))
	for _, c := range charges {
		rs = append(rs, c.t.charge(c.key, now))
	}
	return 0, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		// Cancelled as of the moment it was made: x/time/rate ignores a cancellation dated
		// after the reservation took effect, and with a real clock the password check always
		// takes some time, so the refund would never happen.
		for _, r := range rs {
			r.CancelAt(now)
		}
	}
}

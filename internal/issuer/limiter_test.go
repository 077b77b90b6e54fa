package issuer

import (
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// failAttempt charges one failed attempt, as a wrong password does, and says whether it was allowed.
func failAttempt(l *limiter, user, addr string) bool {
	wait, _ := l.reserve("ns/home", user, addr)
	return wait == 0
}

// succeedAttempt charges one attempt and refunds it, as a right password does.
func succeedAttempt(l *limiter, user, addr string) bool {
	wait, refund := l.reserve("ns/home", user, addr)
	if wait > 0 {
		return false
	}
	refund()
	return true
}

func lockOut(t *testing.T, l *limiter, user, addr string) {
	t.Helper()
	for i := range userBurst {
		if !failAttempt(l, user, addr) {
			t.Fatalf("attempt %d of %s refused before the burst was spent", i, user)
		}
	}
	if failAttempt(l, user, addr) {
		t.Fatalf("%s is not locked out after %d failures", user, userBurst)
	}
}

// TestLimiterEvictionKeepsLockouts: the limiter stays bounded, and making room never forgets
// a user who is locked out while entries back at their full burst can go instead; only when
// every entry is short of its burst does the stalest go. Security review finding: past the
// bound the whole map was cleared, lockouts included.
func TestLimiterEvictionKeepsLockouts(t *testing.T) {
	const size = 8
	cases := []struct {
		name string
		// crowd is how many distinct users, from distinct addresses, fail or succeed once each
		// after the victim is locked out.
		crowd   int
		succeed bool
		// refill, when set, lets that much time pass after the crowd, then 5*size more users
		// log in successfully.
		refill time.Duration
		// kept is whether the victim's bucket is still tracked afterwards.
		kept bool
	}{
		{name: "many successful logins", crowd: 100 * size, succeed: true, kept: true},
		{name: "failures, fewer than the bound", crowd: size - 2, kept: true},
		{name: "failures that refilled, then many logins", crowd: size - 2, refill: 13 * time.Second, kept: true},
		{name: "failures, more than the bound: the stalest goes", crowd: 3 * size, kept: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			l := newLimiterSized(clk, size)
			lockOut(t, l, "victim", "192.0.2.1")
			for i := range tc.crowd {
				u, a := fmt.Sprintf("user%d", i), fmt.Sprintf("198.51.100.%d", i%250)
				if tc.succeed {
					succeedAttempt(l, u, a)
				} else {
					failAttempt(l, u, a)
				}
			}
			if tc.refill > 0 {
				// The crowd's buckets (one attempt short) are full again after 12 s; the
				// victim's (five short) are not.
				clk.SetTime(clk.Now().Add(tc.refill))
				for i := range 5 * size {
					succeedAttempt(l, fmt.Sprintf("late%d", i), "203.0.113.1")
				}
			}
			if l.users.len() > size || l.addrs.len() > size {
				t.Fatalf("tables grew past %d: users %d, addresses %d", size, l.users.len(), l.addrs.len())
			}
			_, kept := l.users.byKey["ns/home\x00victim"]
			if kept != tc.kept {
				t.Fatalf("victim's bucket kept: %v, want %v", kept, tc.kept)
			}
			if kept && tc.refill == 0 && failAttempt(l, "victim", "192.0.2.2") {
				t.Fatal("the victim is no longer locked out")
			}
		})
	}
}

// TestLimiterEvictsTheStalestWhenAllAreLimiting: with every entry short of its burst, the
// least recently used one goes and the fresher ones stay.
func TestLimiterEvictsTheStalestWhenAllAreLimiting(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	l := newLimiterSized(clk, 3)
	for _, u := range []string{"a", "b", "c"} {
		lockOut(t, l, u, "192.0.2.1")
		l.addrs = newTable(addressLimit, addressBurst, 3) // keep the address out of the way
	}
	// Looking "a" up (a refused attempt) makes it the most recently used, so "b" is stalest.
	if failAttempt(l, "a", "192.0.2.9") {
		t.Fatal("a is not locked out")
	}
	if !failAttempt(l, "d", "192.0.2.9") {
		t.Fatal("d refused")
	}
	for u, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, tracked := l.users.byKey["ns/home\x00"+u]; tracked != want {
			t.Errorf("%s tracked: %v, want %v", u, tracked, want)
		}
	}
}

// TestLimiterLookupsTrackNothing: an attempt refused by one limit charges nothing and tracks
// nothing new in the other table.
func TestLimiterLookupsTrackNothing(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	l := newLimiterSized(clk, 100)
	for i := range addressBurst {
		failAttempt(l, fmt.Sprintf("guess%d", i), "192.0.2.1")
	}
	before := l.users.len()
	for i := range 50 {
		if failAttempt(l, fmt.Sprintf("other%d", i), "192.0.2.1") {
			t.Fatal("the address limit let an attempt through")
		}
	}
	if l.users.len() != before {
		t.Fatalf("refused attempts tracked %d new users", l.users.len()-before)
	}
}

// TestAddressKey: IPv4 by the full address (also IPv4-mapped), IPv6 by its /64.
func TestAddressKey(t *testing.T) {
	cases := []struct{ addr, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
	}
	for _, tc := range cases {
		if got := addressKey(tc.addr); got != tc.want {
			t.Errorf("addressKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestIPv6AddressesShareTheirPrefixLimit: failures from many addresses of one /64 spend one
// burst; another /64 and IPv4 addresses are not affected.
func TestIPv6AddressesShareTheirPrefixLimit(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	l := newLimiterSized(clk, 1000)
	for i := range addressBurst {
		if !failAttempt(l, fmt.Sprintf("u%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1)) {
			t.Fatalf("attempt %d refused", i)
		}
	}
	cases := []struct {
		addr    string
		allowed bool
	}{
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", false},
		{"2001:db8:1:3::1", true},
		{"192.0.2.1", true},
	}
	for i, tc := range cases {
		if got := failAttempt(l, fmt.Sprintf("v%d", i), tc.addr); got != tc.allowed {
			t.Errorf("an attempt from %s allowed: %v, want %v", tc.addr, got, tc.allowed)
		}
	}
}

// TestSuccessfulLoginsAreRefundedAfterThePasswordCheck: the refund comes after a bcrypt
// comparison, so the clock has moved on; successful logins must still cost nothing. Found by
// the fleet test: with a real clock the sixth login within the refill window got 429.
func TestSuccessfulLoginsAreRefundedAfterThePasswordCheck(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	l := newLimiter(clk)
	for i := range 5 * userBurst {
		wait, refund := l.reserve("ns/home", "alice", "192.0.2.7")
		if wait > 0 {
			t.Fatalf("login %d of alice is refused for %s although every earlier one succeeded", i, wait)
		}
		clk.Step(80 * time.Millisecond) // the password check
		refund()
	}
}

package keys

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func params() Params {
	return Params{Algorithm: camv1.AlgorithmEdDSA, Period: 10 * time.Hour, PublishAhead: time.Hour, MaxActivationWait: 2 * time.Hour, Retention: 4 * time.Hour}
}

// key builds a key in a state without touching crypto beyond one Ed25519 generation.
func key(t *testing.T, alg camv1.SigningAlgorithm, state camv1.KeyState, published, activates, retires time.Time) *Key {
	t.Helper()
	k, err := Generate(camv1.AlgorithmEdDSA, 0, rand.Reader, t0)
	if err != nil {
		t.Fatal(err)
	}
	k.Algorithm, k.State, k.Published, k.Activates, k.Retires = alg, state, published, activates, retires
	return k
}

func TestNewKey(t *testing.T) {
	active := func(t *testing.T) *Key {
		return key(t, camv1.AlgorithmEdDSA, camv1.KeyActive, t0, t0, time.Time{})
	}
	cases := []struct {
		name      string
		set       func(t *testing.T) *Set
		p         func(p Params) Params
		now       time.Time
		reason    string
		immediate bool
	}{
		{"empty policy", func(*testing.T) *Set { return &Set{} }, nil, t0, ReasonNoActiveKey, true},
		{"fresh active key", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, nil, t0.Add(time.Hour), "", false},
		{"one second before the successor is due", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, nil, t0.Add(9*time.Hour - time.Second), "", false},
		{"successor due", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, nil, t0.Add(9 * time.Hour), ReasonRotationDue, false},
		{"successor already pending", func(t *testing.T) *Set {
			return &Set{Keys: []*Key{active(t), key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(9*time.Hour), t0.Add(10*time.Hour), time.Time{})}}
		}, nil, t0.Add(9*time.Hour + time.Minute), "", false},
		{"controller was down past the due time", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, nil, t0.Add(30 * time.Hour), ReasonRotationDue, false},
		{"algorithm changed", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, func(p Params) Params { p.Algorithm = camv1.AlgorithmES256; return p }, t0.Add(time.Hour), ReasonAlgorithmChanged, false},
		{"algorithm changed, successor of the new algorithm pending", func(t *testing.T) *Set {
			return &Set{Keys: []*Key{active(t), key(t, camv1.AlgorithmES256, camv1.KeyPending, t0, t0.Add(time.Hour), time.Time{})}}
		}, func(p Params) Params { p.Algorithm = camv1.AlgorithmES256; return p }, t0.Add(time.Minute), "", false},
		{"new rotate annotation waits for the fleet", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, func(p Params) Params { p.RotateRequest = "1"; return p }, t0.Add(time.Minute), ReasonRotationRequested, false},
		{"new rotate annotation with revoke signs at once", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, func(p Params) Params { p.RotateRequest = "1"; p.Revoke = true; return p }, t0.Add(time.Minute), ReasonEmergencyRotation, true},
		{"rotate annotation already acted on", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}, RotateRequest: "1"} }, func(p Params) Params { p.RotateRequest = "1"; return p }, t0.Add(time.Minute), "", false},
		{"emergency wins over a due rotation", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, func(p Params) Params { p.RotateRequest = "2"; p.Revoke = true; return p }, t0.Add(9 * time.Hour), ReasonEmergencyRotation, true},
		{"a request wins over a due rotation", func(t *testing.T) *Set { return &Set{Keys: []*Key{active(t)}} }, func(p Params) Params { p.RotateRequest = "2"; return p }, t0.Add(9 * time.Hour), ReasonRotationRequested, false},
		{"active key lost, pending published long enough takes over", func(t *testing.T) *Set {
			return &Set{Keys: []*Key{key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0, t0.Add(time.Hour), time.Time{})}}
		}, nil, t0.Add(time.Hour), "", false},
		{"active key lost, pending too fresh", func(t *testing.T) *Set {
			return &Set{Keys: []*Key{key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0, t0.Add(time.Hour), time.Time{})}}
		}, nil, t0.Add(time.Minute), ReasonNoActiveKey, true},
		{"only retiring keys left", func(t *testing.T) *Set {
			return &Set{Keys: []*Key{key(t, camv1.AlgorithmEdDSA, camv1.KeyRetiring, t0, t0, t0.Add(time.Hour))}}
		}, nil, t0.Add(2 * time.Hour), ReasonNoActiveKey, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.p != nil {
				p = tc.p(p)
			}
			d, needed, immediate := NewKey(tc.set(t), p, tc.now)
			if d.Reason != tc.reason || needed != (tc.reason != "") || immediate != tc.immediate {
				t.Fatalf("NewKey = %q needed=%v immediate=%v, want %q immediate=%v", d.Reason, needed, immediate, tc.reason, tc.immediate)
			}
			if needed && d.Message == "" {
				t.Fatal("a decision without a message")
			}
		})
	}
}

func requested(k *Key) *Key { k.Requested = true; return k }

func TestActivation(t *testing.T) {
	active := func(t *testing.T, alg camv1.SigningAlgorithm) *Key {
		return key(t, alg, camv1.KeyActive, t0, t0, time.Time{})
	}
	pub := t0.Add(9 * time.Hour)
	cases := []struct {
		name    string
		pending *Key
		active  *Key
		agents  Agents
		now     time.Time
		reason  string
		ready   bool
		wake    time.Time
		words   string
	}{
		{"not published", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, time.Time{}, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{}, t0.Add(11 * time.Hour), ReasonNotPublished, false, time.Time{}, "not published"},
		{"publishing", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, pub, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{}, pub.Add(59 * time.Minute), ReasonPublishing, false, pub.Add(time.Hour), "signs from"},
		{"published but period not over", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(time.Hour), t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{}, t0.Add(5 * time.Hour), ReasonNotDue, false, t0.Add(10 * time.Hour), "signs from"},
		{"due, no agents report", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, pub, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{}, t0.Add(10 * time.Hour), ReasonActivated, true, time.Time{}, "now signs"},
		{"due, every agent holds it", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, pub, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{Total: 3}, t0.Add(10 * time.Hour), ReasonActivated, true, time.Time{}, "now signs"},
		{"due, agents lag", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, pub, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{Total: 3, Lagging: []string{"pi-2", "pi-3"}}, t0.Add(10 * time.Hour), ReasonWaitingForAgents, false, pub.Add(2 * time.Hour), "2 of 3 agents to load it: pi-2, pi-3"},
		{"agents lag past the maximum wait", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, pub, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{Total: 3, Lagging: []string{"pi-2"}}, pub.Add(2 * time.Hour), ReasonAgentsLagging, true, time.Time{}, "1 of 3 agents have not loaded it: pi-2"},
		{"many laggers are summarised", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, pub, t0.Add(10*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{Total: 9, Lagging: []string{"a", "b", "c", "d", "e", "f", "g"}}, t0.Add(10 * time.Hour), ReasonWaitingForAgents, false, pub.Add(2 * time.Hour), "a, b, c, d, e and 2 more"},
		{"algorithm change skips the period", key(t, camv1.AlgorithmES256, camv1.KeyPending, t0.Add(time.Hour), t0.Add(2*time.Hour), time.Time{}), active(t, camv1.AlgorithmEdDSA), Agents{}, t0.Add(2 * time.Hour), ReasonActivated, true, time.Time{}, "now signs"},
		{"no active key", key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0, t0.Add(time.Hour), time.Time{}), nil, Agents{}, t0.Add(time.Hour), ReasonActivated, true, time.Time{}, "now signs"},
		{"requested, every agent holds it: no publishAhead, no period", requested(key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(time.Hour), t0.Add(time.Hour), time.Time{})), active(t, camv1.AlgorithmEdDSA), Agents{Total: 2}, t0.Add(time.Hour + time.Second), ReasonActivated, true, time.Time{}, "now signs"},
		{"requested, an agent lags", requested(key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(time.Hour), t0.Add(time.Hour), time.Time{})), active(t, camv1.AlgorithmEdDSA), Agents{Total: 2, Lagging: []string{"pi-2"}}, t0.Add(time.Hour + time.Minute), ReasonWaitingForAgents, false, t0.Add(3 * time.Hour), "1 of 2 agents to load it: pi-2"},
		{"requested, an agent lags past the maximum wait", requested(key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(time.Hour), t0.Add(time.Hour), time.Time{})), active(t, camv1.AlgorithmEdDSA), Agents{Total: 2, Lagging: []string{"pi-2"}}, t0.Add(3 * time.Hour), ReasonAgentsLagging, true, time.Time{}, "pi-2"},
		{"requested, no agents: publishAhead", requested(key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(time.Hour), t0.Add(time.Hour), time.Time{})), active(t, camv1.AlgorithmEdDSA), Agents{}, t0.Add(time.Hour + time.Minute), ReasonPublishing, false, t0.Add(2 * time.Hour), "signs from"},
		{"requested, no agents, published long enough", requested(key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(time.Hour), t0.Add(time.Hour), time.Time{})), active(t, camv1.AlgorithmEdDSA), Agents{}, t0.Add(2 * time.Hour), ReasonActivated, true, time.Time{}, "now signs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.pending.Algorithm == camv1.AlgorithmES256 {
				p.Algorithm = camv1.AlgorithmES256
			}
			d, ready, wake := Activation(tc.pending, tc.active, p, tc.agents, tc.now)
			if d.Reason != tc.reason || ready != tc.ready || !wake.Equal(tc.wake) || !strings.Contains(d.Message, tc.words) {
				t.Fatalf("Activation = %q %q ready=%v wake=%s; want %q (%q) ready=%v wake=%s", d.Reason, d.Message, ready, wake, tc.reason, tc.words, tc.ready, tc.wake)
			}
		})
	}
}

func TestNextDeadline(t *testing.T) {
	p := params()
	active := key(t, camv1.AlgorithmEdDSA, camv1.KeyActive, t0, t0, time.Time{})
	retiring := key(t, camv1.AlgorithmEdDSA, camv1.KeyRetiring, t0, t0, t0.Add(time.Hour))
	pending := key(t, camv1.AlgorithmEdDSA, camv1.KeyPending, t0.Add(9*time.Hour), t0.Add(10*time.Hour), time.Time{})
	cases := []struct {
		name string
		set  *Set
		now  time.Time
		want time.Time
	}{
		{"nothing", &Set{}, t0, time.Time{}},
		{"active only: publish the successor", &Set{Keys: []*Key{active}}, t0, t0.Add(9 * time.Hour)},
		{"retiring key leaves first", &Set{Keys: []*Key{retiring, active}}, t0, t0.Add(5 * time.Hour)},
		{"pending: its activation", &Set{Keys: []*Key{active, pending}}, t0.Add(9 * time.Hour), t0.Add(10 * time.Hour)},
		{"pending ready: now", &Set{Keys: []*Key{active, pending}}, t0.Add(11 * time.Hour), t0.Add(11 * time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextDeadline(tc.set, p, Agents{}, tc.now); !got.Equal(tc.want) {
				t.Fatalf("NextDeadline = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLifecycleMoves(t *testing.T) {
	p := params()
	set := &Set{}
	a, _ := Generate(camv1.AlgorithmEdDSA, 0, rand.Reader, t0)
	set.AddActive(a, false, t0)
	b, _ := Generate(camv1.AlgorithmEdDSA, 0, rand.Reader, t0.Add(9*time.Hour))
	set.AddPending(b, p, t0.Add(9*time.Hour))
	if !b.Activates.Equal(t0.Add(10*time.Hour)) || set.Pending() != b {
		t.Fatalf("pending key plans to sign at %s, want the end of the period", b.Activates)
	}
	if fresh := set.MarkPublished(t0.Add(9 * time.Hour)); len(fresh) != 2 || set.MarkPublished(t0.Add(10*time.Hour)) != nil {
		t.Fatal("MarkPublished must stamp each key once")
	}
	set.Activate(b, t0.Add(10*time.Hour))
	if set.Active() != b || a.State != camv1.KeyRetiring || !a.Retires.Equal(t0.Add(10*time.Hour)) {
		t.Fatal("activation must retire the previous key")
	}
	if gone := set.Prune(p, t0.Add(14*time.Hour-time.Second)); len(gone) != 0 {
		t.Fatal("pruned before retention")
	}
	if gone := set.Prune(p, t0.Add(14*time.Hour)); len(gone) != 1 || gone[0] != a || len(set.Keys) != 1 {
		t.Fatal("not pruned at retention")
	}
	c, _ := Generate(camv1.AlgorithmEdDSA, 0, rand.Reader, t0.Add(15*time.Hour))
	set.AddActive(c, true, t0.Add(15*time.Hour))
	if len(set.Keys) != 1 || set.Active() != c {
		t.Fatal("a revoking rotation must leave only the new key")
	}
}

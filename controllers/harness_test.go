package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness drives a TokenPolicyReconciler by hand against the real API server, with a fake
// clock, so a test decides exactly when time passes and when the controller runs.
type harness struct {
	t      *testing.T
	ns     string
	clock  *clocktesting.FakeClock
	events *events.FakeRecorder
	r      *TokenPolicyReconciler
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, ns: env.Namespace(t), clock: clocktesting.NewFakeClock(t0), events: events.NewFakeRecorder(10000)}
	h.r = h.reconciler(env.Client)
	return h
}

// reconciler is a fresh reconciler over c: nothing carries over from an earlier one, as after
// a restart.
func (h *harness) reconciler(c client.Client) *TokenPolicyReconciler {
	m, err := NewKeyMetrics(prometheus.NewRegistry(), h.clock)
	if err != nil {
		h.t.Fatal(err)
	}
	return &TokenPolicyReconciler{Client: c, Recorder: h.events, Clock: h.clock, TokenServiceURL: "https://camfleet.example", Metrics: m}
}

// policy creates a TokenPolicy with short, test-friendly durations.
func (h *harness) policy(name string, alg camv1.SigningAlgorithm, mutate ...func(*camv1.TokenPolicy)) *camv1.TokenPolicy {
	h.t.Helper()
	d := func(s string) *metav1.Duration {
		v, _ := time.ParseDuration(s)
		return &metav1.Duration{Duration: v}
	}
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Algorithm: alg,
		Rotation:  camv1.RotationSpec{Period: d("10h"), PublishAhead: d("1h"), MaxActivationWait: d("2h")},
		Tokens:    camv1.TokenLifetimes{AccessTTL: d("15m"), RefreshTTL: d("4h"), MaxTTL: d("4h"), Leeway: d("1m")},
	}}
	p.Name, p.Namespace = name, h.ns
	for _, m := range mutate {
		m(p)
	}
	if err := env.Client.Create(context.Background(), p); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: h.ns, Name: name}
}

// reconcileWith runs one reconcile of the named policy with r.
func (h *harness) reconcileWith(r *TokenPolicyReconciler, name string) (ctrl.Result, error) {
	return r.Reconcile(context.Background(), ctrl.Request{NamespacedName: h.key(name)})
}

// settle reconciles until a reconcile writes nothing, and returns its result.
func (h *harness) settle(name string) ctrl.Result {
	h.t.Helper()
	for range 6 {
		before := h.versions(name)
		res, err := h.reconcileWith(h.r, name)
		if err != nil {
			h.t.Fatalf("reconcile %s at %s: %v", name, h.clock.Now().Format(time.RFC3339), err)
		}
		if h.versions(name) == before {
			return res
		}
	}
	h.t.Fatalf("policy %s never settled", name)
	return ctrl.Result{}
}

// versions are the resourceVersions of the policy and the objects it owns.
func (h *harness) versions(name string) string {
	var p camv1.TokenPolicy
	var s corev1.Secret
	var cm corev1.ConfigMap
	_ = env.Client.Get(context.Background(), h.key(name), &p)
	_ = env.Client.Get(context.Background(), h.key(name+"-signing-keys"), &s)
	_ = env.Client.Get(context.Background(), h.key(name+"-jwks"), &cm)
	return p.ResourceVersion + "/" + s.ResourceVersion + "/" + cm.ResourceVersion
}

// state is what is stored for a policy: the policy, its decoded key set, and its JWKS.
type state struct {
	policy *camv1.TokenPolicy
	secret *corev1.Secret
	set    *keys.Set
	jwks   jwk.Set
	raw    string
}

func (h *harness) state(name string) state {
	h.t.Helper()
	ctx := context.Background()
	st := state{policy: &camv1.TokenPolicy{}, secret: &corev1.Secret{}, set: &keys.Set{}}
	if err := env.Client.Get(ctx, h.key(name), st.policy); err != nil {
		h.t.Fatal(err)
	}
	if err := env.Client.Get(ctx, h.key(name+"-signing-keys"), st.secret); err == nil {
		var problems []keys.Problem
		st.set, problems = keys.Decode(st.secret.Data, h.clock.Now())
		if len(problems) > 0 {
			h.t.Fatalf("the controller stored a key set with problems: %v", problems)
		}
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, h.key(name+"-jwks"), &cm); err == nil {
		st.raw = cm.Data[publication.JWKSKey]
		set, err := jwk.Parse([]byte(st.raw))
		if err != nil {
			h.t.Fatalf("published JWKS does not parse: %v", err)
		}
		st.jwks = set
	} else {
		st.jwks = jwk.NewSet()
	}
	return st
}

// publishedKIDs lists the kids in the JWKS.
func (s state) publishedKIDs() []string {
	var out []string
	for i := range s.jwks.Len() {
		k, _ := s.jwks.Key(i)
		kid, _ := k.KeyID()
		out = append(out, kid)
	}
	sort.Strings(out)
	return out
}

func (s state) published(kid string) bool {
	_, ok := s.jwks.LookupKeyID(kid)
	return ok
}

// checkInvariants asserts what must hold after every settled reconcile: exactly one active
// key, a non-empty JWKS holding every stored key and nothing else, the active key in it, and
// the status agreeing with the Secret.
func (h *harness) checkInvariants(name string) state {
	h.t.Helper()
	st := h.state(name)
	active := 0
	var stored []string
	for _, k := range st.set.Keys {
		stored = append(stored, k.ID)
		if k.State == camv1.KeyActive {
			active++
		}
	}
	sort.Strings(stored)
	if active != 1 {
		h.t.Errorf("%d active keys, want exactly 1", active)
	}
	if st.jwks.Len() == 0 {
		h.t.Errorf("the JWKS is empty")
	}
	if got := st.publishedKIDs(); strings.Join(got, ",") != strings.Join(stored, ",") {
		h.t.Errorf("published kids %v, stored kids %v", got, stored)
	}
	if a := st.set.Active(); a != nil && st.policy.Status.ActiveKeyID != a.ID {
		h.t.Errorf("status.activeKeyID %q, Secret's active key %q", st.policy.Status.ActiveKeyID, a.ID)
	}
	return st
}

// drainEvents returns the Events recorded so far.
func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// killSwitch makes every write after the first n fail, as if the process died there.
type killSwitch struct {
	mu     sync.Mutex
	n      int
	writes int
}

var errKilled = errors.New("killed")

func (k *killSwitch) write() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	if k.writes > k.n {
		return errKilled
	}
	return nil
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package controllers

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// startManager runs the controller exactly as the binary wires it (Setup, restricted caches,
// real clock, real Event recorder), watching one namespace, until the test ends. Its metrics
// go to a registry of the test's own.
func startManager(t *testing.T, ns string, o Options) (*prometheus.Registry, ctrl.Manager) {
	t.Helper()
	opts := CacheOptions()
	opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  opts,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	reg := prometheus.NewRegistry()
	if err := Setup(mgr, reg, o); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, mgr.Start)
	return reg, mgr
}

// rotations is camfleet_key_rotations_total of one policy and reason, as reg exposes it.
func rotations(t *testing.T, reg prometheus.Gatherer, ns, policy, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"namespace": ns, "policy": policy, "reason": reason}
	for _, f := range families {
		if f.GetName() != "camfleet_key_rotations_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, want) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestFleetWideRotation annotates every policy in the cluster with kubectl (--all -A), as the
// README tells users to: each of 20 policies rotates exactly once for one value, and again for
// the next.
func TestFleetWideRotation(t *testing.T) {
	ns := env.Namespace(t)
	reg, _ := startManager(t, ns, Options{})
	ctx := context.Background()
	const n = 20
	for i := range n {
		// No agents serve these policies: a requested key signs after publishAhead, here 0.
		p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Rotation: camv1.RotationSpec{PublishAhead: &metav1.Duration{}}}}
		p.Name, p.Namespace = fmt.Sprintf("site-%02d", i), ns
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	policies := func() []camv1.TokenPolicy {
		var l camv1.TokenPolicyList
		if err := env.Client.List(ctx, &l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	waitAll := func(what string, ok func(p *camv1.TokenPolicy) bool) {
		t.Helper()
		testkit.Eventually(t, 90*time.Second, what, func() (bool, string) {
			for _, p := range policies() {
				if !ok(&p) {
					return false, p.Name + ": " + mustJSON(t, p.Status)
				}
			}
			return true, ""
		})
	}
	waitAll("every policy Ready with one key", func(p *camv1.TokenPolicy) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && len(p.Status.Keys) == 1
	})
	first := map[string]string{}
	for _, p := range policies() {
		first[p.Name] = p.Status.ActiveKeyID
	}
	annotate := func(value string) {
		t.Helper()
		cmd := exec.Command(env.Kubectl(), "--kubeconfig", env.Kubeconfig, "annotate", "tokenpolicies", "--all", "-A", "--overwrite", camv1.AnnotationRotate+"="+value)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl annotate: %v\n%s", err, out)
		}
	}
	annotate("1700000000")
	waitAll("every policy rotated once", func(p *camv1.TokenPolicy) bool {
		return p.Status.LastRotateRequest == "1700000000" && len(p.Status.Keys) == 2 && p.Status.ActiveKeyID != first[p.Name]
	})
	// The same value again changes nothing, however often the controller looks.
	annotate("1700000000")
	for _, p := range policies() {
		if got := rotations(t, reg, ns, p.Name, "RotationRequested"); got != 1 {
			t.Errorf("%s rotated %v times for one value", p.Name, got)
		}
	}
	annotate("1700000100")
	waitAll("every policy rotated again for the next value", func(p *camv1.TokenPolicy) bool {
		return p.Status.LastRotateRequest == "1700000100" && len(p.Status.Keys) == 3 && !slices.ContainsFunc(p.Status.Keys, func(k camv1.KeyStatus) bool { return k.State == camv1.KeyPending })
	})
	for _, p := range policies() {
		if got := rotations(t, reg, ns, p.Name, "RotationRequested"); got != 2 {
			t.Errorf("%s rotated %v times for two values", p.Name, got)
		}
	}
	// Events reach the API server, naming the reason.
	testkit.Eventually(t, 30*time.Second, "RotationRequested Events", func() (bool, string) {
		var evs eventsv1.EventList
		if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		count := 0
		for _, e := range evs.Items {
			if e.Reason == "RotationRequested" {
				count++
			}
		}
		return count >= 2*n, fmt.Sprintf("%d RotationRequested Events", count)
	})
	if age, err := testutil.GatherAndCount(reg, "camfleet_active_key_age_seconds"); err != nil || age != n {
		t.Errorf("active key age reported for %d policies, want %d (%v)", age, n, err)
	}
}

// TestSecretCacheHoldsOnlyOwnSecrets: the manager's cache sees the Secrets camfleet labels
// and no other, so the controller never holds users' Secrets in memory.
func TestSecretCacheHoldsOnlyOwnSecrets(t *testing.T) {
	ns := env.Namespace(t)
	_, mgr := startManager(t, ns, Options{})
	ctx := context.Background()
	other := &corev1.Secret{StringData: map[string]string{"password": "not for camfleet"}}
	other.Name, other.Namespace = "someone-elses", ns
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	p := &camv1.TokenPolicy{}
	p.Name, p.Namespace = "cached", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the policy's own Secret in the cache", func() (bool, string) {
		err := mgr.GetCache().Get(ctx, client.ObjectKey{Namespace: ns, Name: "cached-signing-keys"}, &corev1.Secret{})
		return err == nil, fmt.Sprint(err)
	})
	err := mgr.GetCache().Get(ctx, client.ObjectKeyFromObject(other), &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("the cache holds a Secret camfleet does not own (err %v)", err)
	}
	var cached corev1.SecretList
	if err := mgr.GetCache().List(ctx, &cached, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range cached.Items {
		if !strings.HasSuffix(s.Name, "-signing-keys") {
			t.Errorf("cached Secret %s", s.Name)
		}
	}
}

// TestPolicyFindsItsCamerasThroughTheIndex runs the binary's wiring with a default policy:
// the index Setup registers files each Camera under the policy that governs it (the one it
// names, else the default), each policy counts the agents of exactly its cameras from it, and
// a Camera's status or policy changing wakes the policies concerned, the one it left as well
// as the one it joined.
func TestPolicyFindsItsCamerasThroughTheIndex(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	home := types.NamespacedName{Namespace: ns, Name: "home"}
	_, mgr := startManager(t, ns, Options{DefaultPolicy: home})
	for _, name := range []string{"home", "barn"} {
		p := &camv1.TokenPolicy{}
		p.Name, p.Namespace = name, ns
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	policy := func(name string) *camv1.TokenPolicy {
		p := &camv1.TokenPolicy{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	testkit.Eventually(t, 30*time.Second, "both policies Ready", func() (bool, string) {
		for _, n := range []string{"home", "barn"} {
			if !meta.IsStatusConditionTrue(policy(n).Status.Conditions, camv1.ConditionReady) {
				return false, n + ": " + mustJSON(t, policy(n).Status)
			}
		}
		return true, ""
	})
	homeKey, barnKey := policy("home").Status.ActiveKeyID, policy("barn").Status.ActiveKeyID
	// A camera is served by an agent once it reports the keys it holds.
	camera := func(name, node, ref string, loaded ...string) *camv1.Camera {
		t.Helper()
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: node, Source: camv1.CameraSource{Type: camv1.SourceTestPattern, TestPattern: &camv1.TestPatternSource{}}}}
		if ref != "" {
			c.Spec.TokenPolicyRef = &camv1.PolicyReference{Name: ref}
		}
		c.Name, c.Namespace = name, ns
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		agentReport(t, client.ObjectKeyFromObject(c), camv1.CameraStatus{LoadedKeyIDs: loaded})
		return c
	}
	camera("porch", "pi-1", "", homeKey)          // the default policy
	shed := camera("shed", "pi-2", "home", "old") // names it, lags
	gate := camera("gate", "pi-3", "barn", barnKey)

	indexed := func(p types.NamespacedName) []string {
		var l camv1.CameraList
		if err := mgr.GetCache().List(ctx, &l, client.MatchingFields{cameraPolicyField: p.String()}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range l.Items {
			names = append(names, c.Name)
		}
		slices.Sort(names)
		return names
	}
	agents := func(what string, want map[string]string) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, what, func() (bool, string) {
			for n, w := range want {
				if got := policy(n).Status.Agents; got != w {
					return false, fmt.Sprintf("%s counts agents %s, want %s", n, got, w)
				}
			}
			return true, ""
		})
	}
	agents("each policy counting the agents of its own cameras", map[string]string{"home": "1/2", "barn": "1/1"})
	if got := strings.Join(indexed(home), ","); got != "porch,shed" {
		t.Errorf("the index files %s under home, want porch,shed", got)
	}
	if c := meta.FindStatusCondition(policy("home").Status.Conditions, camv1.ConditionAgentsInSync); c == nil || !strings.Contains(c.Message, "pi-2") {
		t.Errorf("home does not name the lagging agent: %+v", c)
	}

	agentReport(t, client.ObjectKeyFromObject(shed), camv1.CameraStatus{LoadedKeyIDs: []string{"old", homeKey}})
	agents("home woken by its camera's status", map[string]string{"home": "2/2", "barn": "1/1"})

	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(gate), gate); err != nil {
		t.Fatal(err)
	}
	base := gate.DeepCopy()
	gate.Spec.TokenPolicyRef = nil
	if err := env.Client.Patch(ctx, gate, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	agents("both policies woken by a camera moving from one to the other", map[string]string{"home": "2/3", "barn": "0/0"})
	if got := strings.Join(indexed(types.NamespacedName{Namespace: ns, Name: "barn"}), ","); got != "" {
		t.Errorf("the index still files %s under barn", got)
	}
}

// TestForeignSecretBehindTheCacheStallsThePolicy: a Secret under the policy's key-Secret name
// without camfleet's label, which the manager's cache never holds, is found on the API server:
// the policy stalls with a plain message instead of failing to create it over and over, and
// the Secret is not written.
func TestForeignSecretBehindTheCacheStallsThePolicy(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startManager(t, ns, Options{})
	foreign := &corev1.Secret{StringData: map[string]string{"mine": "keep me"}}
	foreign.Name, foreign.Namespace = "hidden-signing-keys", ns
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	p := &camv1.TokenPolicy{}
	p.Name, p.Namespace = "hidden", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "the policy to stall", func() (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionStalled)
		return c != nil && c.Message == "Secret hidden-signing-keys exists and is not owned by this TokenPolicy; delete or rename it", mustJSON(t, p.Status)
	})
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(foreign), &s); err != nil || s.ResourceVersion != foreign.ResourceVersion {
		t.Fatalf("the foreign Secret was written: %v", err)
	}
}

// TestForeignSessionStoreIsReportedWithoutStalling: a ConfigMap under the policy's
// session-store name without camfleet's labels, which the manager's cache never holds, is found
// on the API server and reported (SessionStoreAvailable False, naming it, and a Warning Event),
// while the keys go on rotating: only logins are blocked. Once it is deleted, which no watch
// reports, the condition goes away by itself.
func TestForeignSessionStoreIsReportedWithoutStalling(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startManager(t, ns, Options{})
	foreign := &corev1.ConfigMap{Data: map[string]string{"mine": "keep me"}}
	foreign.Name, foreign.Namespace = "home-sessions", ns
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	p := &camv1.TokenPolicy{}
	p.Name, p.Namespace = "home", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	const message = "ConfigMap home-sessions is not this TokenPolicy's refresh-session store (no owner reference to the policy, " +
		"or not labelled as camfleet's), so every login and refresh fails; delete or rename it"
	get := func() *camv1.TokenPolicy {
		t.Helper()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	reported := func(p *camv1.TokenPolicy) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionSessionStoreAvailable)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == camv1.ReasonForeignConfigMap && c.Message == message
	}
	testkit.Eventually(t, 30*time.Second, "the foreign session store reported on a Ready policy", func() (bool, string) {
		p := get()
		return reported(p) && meta.IsStatusConditionTrue(p.Status.Conditions, camv1.ConditionReady), mustJSON(t, p.Status)
	})
	testkit.Eventually(t, 30*time.Second, "a Warning Event naming the ConfigMap", func() (bool, string) {
		var evs eventsv1.EventList
		if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == camv1.ReasonForeignConfigMap && e.Note == message && e.Regarding.Name == "home" {
				return true, ""
			}
			seen = append(seen, e.Type+" "+e.Reason+" "+e.Note)
		}
		return false, strings.Join(seen, "\n")
	})

	// Rotation goes on regardless.
	first := get().Status.ActiveKeyID
	// A patch, not an update: the controller writes the status meanwhile, and an update would
	// race it on the resourceVersion.
	base := p.DeepCopy()
	p.Annotations = map[string]string{camv1.AnnotationRotate: "incident-1", camv1.AnnotationRotateRevoke: "true"}
	if err := env.Client.Patch(ctx, p, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "an emergency rotation beside the foreign store", func() (bool, string) {
		p := get()
		return p.Status.LastRotateRequest == "incident-1" && p.Status.ActiveKeyID != first && reported(p) &&
			meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionStalled) == nil, mustJSON(t, p.Status)
	})
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(foreign), &cm); err != nil || cm.ResourceVersion != foreign.ResourceVersion {
		t.Fatalf("the foreign ConfigMap was written: %v", err)
	}

	if err := env.Client.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*foreignStoreRecheck+15*time.Second, "the condition to go once the ConfigMap is deleted", func() (bool, string) {
		p := get()
		return meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionSessionStoreAvailable) == nil && meta.IsStatusConditionTrue(p.Status.Conditions, camv1.ConditionReady), mustJSON(t, p.Status)
	})
}

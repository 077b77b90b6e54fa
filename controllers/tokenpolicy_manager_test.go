package controllers

import (
	"context"
	"fmt"
	"os/exec"
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
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// startManager runs the TokenPolicy and AccessToken controllers the way the binary does
// (restricted caches, real clock, real Event recorder), watching one namespace, until the test
// ends.
func startManager(t *testing.T, ns string) (*KeyMetrics, ctrl.Manager) {
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
	km, err := NewKeyMetrics(prometheus.NewRegistry(), clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	r := &TokenPolicyReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("camfleet-controller"), Clock: clock.RealClock{}, Metrics: km}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	at := &AccessTokenReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("camfleet-controller"), Clock: clock.RealClock{}}
	if err := at.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return km, mgr
}

// eventually polls cond every 100 ms until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFleetWideRotation annotates every policy in the cluster with kubectl (--all -A), as the
// README tells users to: each of 20 policies rotates exactly once for one value, and again for
// the next.
func TestFleetWideRotation(t *testing.T) {
	ns := env.Namespace(t)
	km, _ := startManager(t, ns)
	ctx := context.Background()
	const n = 20
	for i := range n {
		p := &camv1.TokenPolicy{}
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
		eventually(t, 90*time.Second, what, func() (bool, string) {
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
		if got := testutil.ToFloat64(km.rotations.WithLabelValues(ns, p.Name, "EmergencyRotation")); got != 1 {
			t.Errorf("%s rotated %v times for one value", p.Name, got)
		}
	}
	annotate("1700000100")
	waitAll("every policy rotated again for the next value", func(p *camv1.TokenPolicy) bool {
		return p.Status.LastRotateRequest == "1700000100" && len(p.Status.Keys) == 3
	})
	for _, p := range policies() {
		if got := testutil.ToFloat64(km.rotations.WithLabelValues(ns, p.Name, "EmergencyRotation")); got != 2 {
			t.Errorf("%s rotated %v times for two values", p.Name, got)
		}
	}
	// Events reach the API server, naming the reason.
	eventually(t, 30*time.Second, "EmergencyRotation Events", func() (bool, string) {
		var evs eventsv1.EventList
		if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		count := 0
		for _, e := range evs.Items {
			if e.Reason == "EmergencyRotation" {
				count++
			}
		}
		return count >= 2*n, fmt.Sprintf("%d EmergencyRotation Events", count)
	})
	if age := testutil.CollectAndCount(km, "camfleet_active_key_age_seconds"); age != n {
		t.Errorf("active key age reported for %d policies, want %d", age, n)
	}
}

// TestSecretCacheHoldsOnlyOwnSecrets: the manager's cache sees the Secrets camfleet labels
// and no other, so the controller never holds users' Secrets in memory.
func TestSecretCacheHoldsOnlyOwnSecrets(t *testing.T) {
	ns := env.Namespace(t)
	_, mgr := startManager(t, ns)
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
	eventually(t, 30*time.Second, "the policy's own Secret in the cache", func() (bool, string) {
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

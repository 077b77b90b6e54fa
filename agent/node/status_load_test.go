package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// TestSettledCameraWritesStatusLessThanOnceAMinute: with the agent on a fake clock, a settled
// camera's status is written fewer than once per simulated minute (the heartbeat), counted
// over ten simulated minutes, and a change that matters (a new key loaded) is written in the
// very status round after the agent sees it.
func TestSettledCameraWritesStatusLessThanOnceAMinute(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startController(t, ns)
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"}}}
	p.Namespace, p.Name = ns, "home"
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	env.Nodes(t, "pi-s")
	c := testCamera(ns, "still", "pi-s")
	c.Spec.Motion.Enabled = ptr.To(false) // motion counts are news, not steady state
	if err := env.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	var a *Agent
	m, err := NewMetrics(prometheus.NewRegistry(), func() *Agent { return a })
	if err != nil {
		t.Fatal(err)
	}
	a = startAgentWith(t, ns, "pi-s", Options{Clock: clk, Metrics: m}).agent
	key := types.NamespacedName{Namespace: ns, Name: "still"}
	simulated := time.Duration(0)
	// tick moves the fake clock one status period and waits for the round it causes.
	tick := func() {
		t.Helper()
		before := a.statusRounds.Load()
		testkit.Eventually(t, 10*time.Second, "a status round", func() (bool, string) {
			if a.statusRounds.Load() > before {
				return true, ""
			}
			clk.Step(statusTick)
			simulated += statusTick
			return false, fmt.Sprintf("%d rounds", before)
		})
	}
	camera := func() *camv1.Camera {
		cam := &camv1.Camera{}
		if err := env.Client.Get(ctx, key, cam); err != nil {
			t.Fatal(err)
		}
		return cam
	}
	testkit.Eventually(t, 30*time.Second, "the camera settled and Ready", func() (bool, string) {
		tick()
		cam := camera()
		return meta.IsStatusConditionTrue(cam.Status.Conditions, camv1.ConditionReady) && len(cam.Status.LoadedKeyIDs) > 0, fmt.Sprintf("status %+v", cam.Status)
	})
	// Let the first heartbeat after settling pass, so counting starts from a settled state.
	for range int(heartbeatEvery / statusTick) {
		tick()
	}

	writes := func() float64 { return testutil.ToFloat64(m.StatusWrites) }
	w0, s0, hb0 := writes(), simulated, camera().Status.LastHeartbeatTime
	for simulated-s0 < 10*time.Minute {
		tick()
	}
	minutes := (simulated - s0).Minutes()
	perMinute := (writes() - w0) / minutes
	t.Logf("%v status writes in %.1f simulated minutes: %.2f a minute", writes()-w0, minutes, perMinute)
	if perMinute >= 1 {
		t.Errorf("a settled camera's status was written %.2f times a simulated minute, want fewer than one", perMinute)
	}
	if hb := camera().Status.LastHeartbeatTime; hb == nil || !hb.After(hb0.Time.Add(8*time.Minute)) {
		t.Errorf("the heartbeat went from %v to %v over ten simulated minutes", hb0, hb)
	}
	if !meta.IsStatusConditionTrue(camera().Status.Conditions, camv1.ConditionReady) {
		t.Errorf("the camera is not Ready after ten quiet minutes: %+v", camera().Status)
	}

	// A rotation's new key is news: written once the node's hold (keyReportOffset) has
	// passed after the agent loads it.
	annotate(t, ns, camv1.AnnotationRotate, "load-test")
	policy := types.NamespacedName{Namespace: ns, Name: "home"}
	testkit.Eventually(t, 20*time.Second, "the agent loading the new key", func() (bool, string) {
		loaded, _, _ := a.Keys.Keys(policy)
		return len(loaded) == 2, fmt.Sprintf("the agent holds %v", loaded)
	})
	loaded, _, _ := a.Keys.Keys(policy)
	w0 = writes()
	for range int((keyReportDelay+keyReportSpread)/statusTick) + 1 {
		tick()
	}
	if got := camera().Status.LoadedKeyIDs; !slices.Equal(got, loaded) {
		t.Errorf("%s after loading keys %v the status holds %v", keyReportDelay+keyReportSpread, loaded, got)
	}
	if n := writes() - w0; n != 1 {
		t.Errorf("the new key was reported in %v writes, want 1", n)
	}
}

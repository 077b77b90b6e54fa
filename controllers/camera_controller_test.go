package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/camerastatus"
	"github.com/camfleet/camfleet/internal/testkit"
)

// agentReport applies a Camera's agent-owned status as the agent does.
func agentReport(t *testing.T, key types.NamespacedName, st camv1.CameraStatus) {
	t.Helper()
	if err := camerastatus.Apply(context.Background(), env.Client, key, st, camerastatus.Agent); err != nil {
		t.Fatal(err)
	}
}

// healthyReport is what a working agent reports at now for a camera of generation gen.
func healthyReport(now time.Time, gen int64) camv1.CameraStatus {
	ts := metav1.NewTime(now.Truncate(time.Second))
	c := func(typ, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: reason, ObservedGeneration: gen, LastTransitionTime: ts}
	}
	return camv1.CameraStatus{LastHeartbeatTime: &ts, LastFrameTime: &ts, Endpoint: "http://pi:8080/api/cameras/x/", FPS: "15.0", LoadedKeyIDs: []string{"k1"}, EnforcedKeyID: "k1",
		Conditions: []metav1.Condition{c(camv1.ConditionCapturing, "Capturing"), c(camv1.ConditionKeysLoaded, "Loaded"), c(camv1.ConditionMotionDetection, "Detecting")}}
}

// managedBy lists the status fields (top-level names under status, and condition types) each
// field manager owns on the camera's status.
func managedBy(t *testing.T, cam *camv1.Camera) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, mf := range cam.ManagedFields {
		if mf.Subresource != "status" || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			t.Fatal(err)
		}
		for f, sub := range fields["f:status"] {
			if f == "f:conditions" {
				for k := range sub.(map[string]any) {
					if strings.HasPrefix(k, "k:") {
						var key struct{ Type string }
						_ = json.Unmarshal([]byte(strings.TrimPrefix(k, "k:")), &key)
						out[mf.Manager] = append(out[mf.Manager], "condition "+key.Type)
					}
				}
				continue
			}
			out[mf.Manager] = append(out[mf.Manager], strings.TrimPrefix(f, "f:"))
		}
	}
	return out
}

// TestCameraReadyFollowsTheAgent drives the Camera controller by hand with a fake clock
// against the real API server, with an agent's reports applied as the agent applies them:
// Ready waits for the agent, turns AgentLost once its heartbeat is older than the bound and
// NoFrames when capture stops, each with an Event, and recovers; and neither field manager
// ever takes or drops the other's fields.
func TestCameraReadyFollowsTheAgent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := &CameraReconciler{Client: env.Client, Recorder: h.events, Clock: h.clock}
	h.policy("home", camv1.AlgorithmEdDSA)
	env.Nodes(t, "pi-c1")
	cam := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: "pi-c1", TokenPolicyRef: &camv1.PolicyReference{Name: "home"},
		Source: camv1.CameraSource{Type: camv1.SourceTestPattern, TestPattern: &camv1.TestPatternSource{}}}}
	cam.Name, cam.Namespace = "porch", h.ns
	if err := env.Client.Create(ctx, cam); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(cam)
	reconcile := func() ctrl.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	get := func() *camv1.Camera {
		c := &camv1.Camera{}
		if err := env.Client.Get(ctx, key, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ready := func(want string) *camv1.Camera {
		t.Helper()
		c := get()
		r := meta.FindStatusCondition(c.Status.Conditions, camv1.ConditionReady)
		if r == nil || string(r.Status)+"/"+r.Reason != want {
			t.Fatalf("at %s Ready is %+v, want %s; status %s", h.clock.Now().Format(time.RFC3339), r, want, mustJSON(t, c.Status))
		}
		return c
	}
	events := func(want ...string) {
		t.Helper()
		got := strings.Join(h.drainEvents(), "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("no Event %q among:\n%s", w, got)
			}
		}
	}

	reconcile()
	c := ready("False/WaitingForAgent")
	if c.Status.TokenPolicy != h.ns+"/home" || c.Status.ObservedGeneration != c.Generation ||
		!meta.IsStatusConditionTrue(c.Status.Conditions, camv1.ConditionPolicyResolved) || !meta.IsStatusConditionTrue(c.Status.Conditions, camv1.ConditionNodeResolved) {
		t.Fatalf("resolution: %s", mustJSON(t, c.Status))
	}

	agentReport(t, key, healthyReport(h.clock.Now(), c.Generation))
	res := reconcile()
	ready("True/Succeeded")
	events("Normal Ready")
	if res.RequeueAfter != AgentLostAfter+time.Second {
		t.Errorf("requeue after %s, want the moment the heartbeat grows too old (%s)", res.RequeueAfter, AgentLostAfter+time.Second)
	}
	// The agent reports again over the controller's conditions, and the controller over the
	// agent's: each keeps exactly its own.
	h.clock.Step(75 * time.Second)
	agentReport(t, key, healthyReport(h.clock.Now(), c.Generation))
	reconcile()
	c = ready("True/Succeeded")
	owned := managedBy(t, c)
	want := map[string]string{
		"camfleet-controller": "condition NodeResolved,condition PolicyResolved,condition Ready,observedGeneration,tokenPolicy",
		"camfleet-agent":      "condition Capturing,condition KeysLoaded,condition MotionDetection,endpoint,enforcedKeyID,fps,lastFrameTime,lastHeartbeatTime,loadedKeyIDs",
	}
	for m, w := range want {
		got := owned[m]
		slices.Sort(got)
		if strings.Join(got, ",") != w {
			t.Errorf("%s owns %v, want %s", m, got, w)
		}
	}
	if len(owned) != 2 {
		t.Errorf("status managers %v, want the controller and the agent only", owned)
	}

	// The agent stops. Just inside the bound the camera is still Ready; past it, AgentLost.
	h.clock.Step(AgentLostAfter)
	reconcile()
	ready("True/Succeeded")
	h.clock.Step(time.Second)
	if res := reconcile(); res.RequeueAfter != 0 {
		t.Errorf("a lost agent is re-checked after %s; only its next report can change anything", res.RequeueAfter)
	}
	c = ready("False/AgentLost")
	if msg := meta.FindStatusCondition(c.Status.Conditions, camv1.ConditionReady).Message; !strings.Contains(msg, "pi-c1") {
		t.Errorf("AgentLost does not name the node: %q", msg)
	}
	events("Warning AgentLost")
	if c.Status.Endpoint == "" || !meta.IsStatusConditionTrue(c.Status.Conditions, camv1.ConditionCapturing) {
		t.Errorf("the controller dropped the agent's last report: %s", mustJSON(t, c.Status))
	}

	// It comes back, then its camera is unplugged, then plugged in again.
	agentReport(t, key, healthyReport(h.clock.Now(), c.Generation))
	reconcile()
	ready("True/Succeeded")
	events("Normal Recovered")
	unplugged := healthyReport(h.clock.Now(), c.Generation)
	unplugged.Conditions[0] = metav1.Condition{Type: camv1.ConditionCapturing, Status: metav1.ConditionFalse, Reason: "Disconnected", Message: "/dev/video0 went away; retrying in 2s", ObservedGeneration: c.Generation, LastTransitionTime: *unplugged.LastHeartbeatTime}
	agentReport(t, key, unplugged)
	reconcile()
	ready("False/NoFrames")
	events("Warning NoFrames")
	agentReport(t, key, healthyReport(h.clock.Now(), c.Generation))
	reconcile()
	ready("True/Succeeded")
	events("Normal Recovered")

	// Frames stop without the source failing: the agent lives, its last frame ages.
	h.clock.Step(time.Minute)
	stale := healthyReport(h.clock.Now(), c.Generation)
	old := metav1.NewTime(h.clock.Now().Add(-time.Minute))
	stale.LastFrameTime = &old
	agentReport(t, key, stale)
	reconcile()
	ready("False/NoFrames")

	// The policy goes away: the camera says so, without an error to retry.
	if err := env.Client.Delete(ctx, &camv1.TokenPolicy{ObjectMeta: metav1.ObjectMeta{Name: "home", Namespace: h.ns}}); err != nil {
		t.Fatal(err)
	}
	reconcile()
	c = ready("False/PolicyNotFound")
	if cond := meta.FindStatusCondition(c.Status.Conditions, camv1.ConditionPolicyResolved); cond.Status != metav1.ConditionFalse || cond.Reason != camv1.ReasonPolicyNotFound {
		t.Errorf("PolicyResolved %+v", cond)
	}
}

// TestCameraControllerWatchesNodesAndPolicies: the controller as the binary wires it, with a
// namespace default (--default-token-policy late), notices a Node and a TokenPolicy appearing
// for Cameras that waited on them, the one naming the policy and the one relying on the
// namespace's default alike.
func TestCameraControllerWatchesNodesAndPolicies(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startManager(t, ns, Options{DefaultPolicy: types.NamespacedName{Name: "late"}})
	node := "pi-w-" + ns // a node no other test makes
	mk := func(name string, ref string) types.NamespacedName {
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: node, Source: camv1.CameraSource{Type: camv1.SourceTestPattern, TestPattern: &camv1.TestPatternSource{}}}}
		if ref != "" {
			c.Spec.TokenPolicyRef = &camv1.PolicyReference{Name: ref}
		}
		c.Name, c.Namespace = name, ns
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		return client.ObjectKeyFromObject(c)
	}
	gate, shed := mk("gate", "late"), mk("shed", "")
	await := func(key types.NamespacedName, typ, want string) {
		t.Helper()
		testkit.Eventually(t, 20*time.Second, fmt.Sprintf("%s %s %s", key.Name, typ, want), func() (bool, string) {
			c := &camv1.Camera{}
			_ = env.Client.Get(ctx, key, c)
			got := meta.FindStatusCondition(c.Status.Conditions, typ)
			return got != nil && string(got.Status)+"/"+got.Reason == want, fmt.Sprintf("%+v", got)
		})
	}
	await(gate, camv1.ConditionPolicyResolved, "False/"+camv1.ReasonPolicyNotFound)
	await(gate, camv1.ConditionNodeResolved, "False/"+camv1.ReasonNodeNotFound)
	await(shed, camv1.ConditionPolicyResolved, "False/"+camv1.ReasonPolicyNotFound)

	env.Nodes(t, node)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}) })
	await(gate, camv1.ConditionNodeResolved, "True/Found")
	await(shed, camv1.ConditionNodeResolved, "True/Found")
	p := &camv1.TokenPolicy{}
	p.Name, p.Namespace = "late", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	await(gate, camv1.ConditionPolicyResolved, "True/Found")
	await(shed, camv1.ConditionPolicyResolved, "True/Found")
	await(gate, camv1.ConditionReady, "False/"+camv1.ReasonWaitingForAgent)
	c := &camv1.Camera{}
	if err := env.Client.Get(ctx, shed, c); err != nil || c.Status.TokenPolicy != ns+"/late" {
		t.Errorf("shed is governed by %q, want the namespace default %s/late (%v)", c.Status.TokenPolicy, ns, err)
	}
}

package controllers

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func TestCameraConditions(t *testing.T) {
	now := t0.Add(time.Hour)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(now.Add(d)); return &m }
	agentCond := func(typ string, ok bool, reason, msg string, gen int64) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	// healthy is a camera whose agent reported 30 s ago with a frame of that moment.
	healthy := func() *camv1.Camera {
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: "pi-1"}}
		c.Generation = 2
		c.Status = camv1.CameraStatus{LastHeartbeatTime: at(-30 * time.Second), LastFrameTime: at(-31 * time.Second), Conditions: []metav1.Condition{
			agentCond(camv1.ConditionCapturing, true, "Capturing", "receiving frames", 2),
			agentCond(camv1.ConditionKeysLoaded, true, "Loaded", "2 keys", 2),
		}}
		return c
	}
	with := func(f func(*camv1.Camera)) *camv1.Camera { c := healthy(); f(c); return c }
	found := cameraFacts{policy: types.NamespacedName{Namespace: "ns", Name: "home"}, policyFound: true, nodeFound: true}
	for _, tc := range []struct {
		name   string
		cam    *camv1.Camera
		facts  cameraFacts
		ready  string // status/reason
		words  string
		policy string
		node   string
	}{
		{"healthy", healthy(), found, "True/Succeeded", "capturing on node pi-1", "True", "True"},
		{"suspended wins", with(func(c *camv1.Camera) { c.Spec.Suspend = true; c.Status.LastHeartbeatTime = at(-time.Hour) }), found, "False/Suspended", "spec.suspend", "True", "True"},
		{"no policy at all", healthy(), cameraFacts{nodeFound: true}, "False/NoPolicy", "spec.tokenPolicyRef", "False", "True"},
		{"policy missing", healthy(), cameraFacts{policy: found.policy, nodeFound: true}, "False/PolicyNotFound", "TokenPolicy ns/home does not exist", "False", "True"},
		{"node missing", healthy(), cameraFacts{policy: found.policy, policyFound: true}, "False/NodeNotFound", "spec.nodeName: no Node pi-1", "True", "False"},
		{"no agent yet", with(func(c *camv1.Camera) { c.Status = camv1.CameraStatus{} }), found, "False/WaitingForAgent", "no agent on node pi-1", "True", "True"},
		{"heartbeat just within the bound", with(func(c *camv1.Camera) {
			c.Status.LastHeartbeatTime, c.Status.LastFrameTime = at(-AgentLostAfter), at(-AgentLostAfter)
		}), found, "True/Succeeded", "", "True", "True"},
		{"agent lost", with(func(c *camv1.Camera) { c.Status.LastHeartbeatTime = at(-AgentLostAfter - time.Second) }), found, "False/AgentLost", "the agent on node pi-1 last reported at", "True", "True"},
		{"capture failing", with(func(c *camv1.Camera) {
			c.Status.Conditions[0] = agentCond(camv1.ConditionCapturing, false, "Disconnected", "/dev/video0 went away", 2)
		}), found, "False/NoFrames", "/dev/video0 went away", "True", "True"},
		{"frames stale while the agent lives", with(func(c *camv1.Camera) { c.Status.LastFrameTime = at(-30*time.Second - NoFramesAfter - time.Second) }), found, "False/NoFrames", "no frame since", "True", "True"},
		{"no frame ever", with(func(c *camv1.Camera) { c.Status.LastFrameTime = nil }), found, "False/NoFrames", "no frame yet", "True", "True"},
		{"no keys", with(func(c *camv1.Camera) {
			c.Status.Conditions[1] = agentCond(camv1.ConditionKeysLoaded, false, camv1.ReasonNoVerificationKeys, "no keys could be loaded", 2)
		}), found, "False/NoVerificationKeys", "no keys could be loaded", "True", "True"},
		{"agent serves an older generation", with(func(c *camv1.Camera) { c.Generation = 3 }), found, "False/Progressing", "generation 2 of the spec, not yet 3", "True", "True"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conds := cameraConditions(tc.cam, tc.facts, now)
			r := meta.FindStatusCondition(conds, camv1.ConditionReady)
			if got := string(r.Status) + "/" + r.Reason; got != tc.ready || !strings.Contains(r.Message, tc.words) {
				t.Errorf("Ready %s %q, want %s containing %q", got, r.Message, tc.ready, tc.words)
			}
			if c := meta.FindStatusCondition(conds, camv1.ConditionPolicyResolved); string(c.Status) != tc.policy {
				t.Errorf("PolicyResolved %+v, want %s", c, tc.policy)
			}
			if c := meta.FindStatusCondition(conds, camv1.ConditionNodeResolved); string(c.Status) != tc.node {
				t.Errorf("NodeResolved %+v, want %s", c, tc.node)
			}
			if len(conds) != 3 {
				t.Errorf("the controller computes %d conditions, want its three", len(conds))
			}
		})
	}
}

func TestNextCameraDeadline(t *testing.T) {
	hb := metav1.NewTime(t0)
	c := &camv1.Camera{Status: camv1.CameraStatus{LastHeartbeatTime: &hb}}
	if got := nextCameraDeadline(c, t0.Add(time.Minute)); !got.Equal(t0.Add(AgentLostAfter + time.Second)) {
		t.Errorf("deadline %s, want just after the heartbeat grows too old", got)
	}
	if got := nextCameraDeadline(c, t0.Add(AgentLostAfter+time.Second)); !got.IsZero() {
		t.Errorf("a lost agent is woken at %s; only its next report can change anything", got)
	}
	if got := nextCameraDeadline(&camv1.Camera{}, t0); !got.IsZero() {
		t.Errorf("a camera no agent reported on is woken at %s", got)
	}
}

package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func TestAgentReportChangedPassesWhatAPolicyReads(t *testing.T) {
	base := func() *camv1.Camera {
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: "pi-a", TokenPolicyRef: &camv1.PolicyReference{Name: "home"}},
			Status: camv1.CameraStatus{LoadedKeyIDs: []string{"k1"}, EnforcedKeyID: "k1", FPS: "15.0"}}
		c.Namespace, c.Name = "cams", "front"
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(c *camv1.Camera)
		pass   bool
	}{
		{"heartbeat", func(c *camv1.Camera) { now := metav1.Now(); c.Status.LastHeartbeatTime = &now; c.Status.FPS = "14.8" }, false},
		{"motion count", func(c *camv1.Camera) { c.Status.MotionEvents = 3 }, false},
		{"resource version only", func(c *camv1.Camera) { c.ResourceVersion = "9" }, false},
		{"a key loaded", func(c *camv1.Camera) { c.Status.LoadedKeyIDs = []string{"k1", "k2"} }, true},
		{"a key dropped", func(c *camv1.Camera) { c.Status.LoadedKeyIDs = nil }, true},
		{"moved to another node", func(c *camv1.Camera) { c.Spec.NodeName = "pi-b" }, true},
		{"moved to another policy", func(c *camv1.Camera) { c.Spec.TokenPolicyRef = &camv1.PolicyReference{Name: "work"} }, true},
		{"to the default policy", func(c *camv1.Camera) { c.Spec.TokenPolicyRef = nil }, true},
		{"suspended", func(c *camv1.Camera) { c.Spec.Suspend = true }, true},
		{"being deleted", func(c *camv1.Camera) { now := metav1.Now(); c.DeletionTimestamp = &now }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := base()
			tc.change(cur)
			if got := agentReportChanged.Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: cur}); got != tc.pass {
				t.Errorf("passes %v, want %v", got, tc.pass)
			}
		})
	}
	if !agentReportChanged.Create(event.CreateEvent{Object: base()}) || !agentReportChanged.Delete(event.DeleteEvent{Object: base()}) {
		t.Error("a Camera created or deleted changes its policy's count")
	}
}

func TestComesOrGoesPassesOnlyCreationAndDeletion(t *testing.T) {
	p := &camv1.TokenPolicy{}
	q := p.DeepCopy()
	q.Status.Agents = "3/4"
	if comesOrGoes.Update(event.UpdateEvent{ObjectOld: p, ObjectNew: q}) {
		t.Error("a policy's status update woke its cameras")
	}
	if !comesOrGoes.Create(event.CreateEvent{Object: p}) || !comesOrGoes.Delete(event.DeleteEvent{Object: p}) {
		t.Error("a policy coming or going must wake its cameras")
	}
}

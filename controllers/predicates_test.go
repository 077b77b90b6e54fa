package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
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

// TestAgentReportsJoinOneReconcilePerPolicy: a rotation's burst of key reports from the Cameras
// of two policies (one Camera moving between them) becomes one queued reconcile per policy,
// after agentReportBatch rather than at once.
func TestAgentReportsJoinOneReconcilePerPolicy(t *testing.T) {
	r := &TokenPolicyReconciler{}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	h := r.agentReports()
	cam := func(name, policy string, keys ...string) *camv1.Camera {
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: "pi-" + name, TokenPolicyRef: &camv1.PolicyReference{Name: policy}},
			Status: camv1.CameraStatus{LoadedKeyIDs: keys}}
		c.Namespace, c.Name = "cams", name
		return c
	}
	ctx := context.Background()
	start := time.Now()
	for i := range 200 {
		name := fmt.Sprintf("cam-%d", i)
		h.Update(ctx, event.UpdateEvent{ObjectOld: cam(name, "home", "k1"), ObjectNew: cam(name, "home", "k1", "k2")}, q)
	}
	h.Update(ctx, event.UpdateEvent{ObjectOld: cam("porch", "home", "k1"), ObjectNew: cam("porch", "work", "k1")}, q)
	h.Create(ctx, event.CreateEvent{Object: cam("garden", "work")}, q)
	if n := q.Len(); n != 0 && time.Since(start) < agentReportBatch {
		t.Fatalf("%d reconciles queued at once; want them held for %s", n, agentReportBatch)
	}
	testkit.Eventually(t, 10*time.Second, "both policies queued", func() (bool, string) {
		return q.Len() == 2, fmt.Sprintf("%d queued", q.Len())
	})
	if waited := time.Since(start); waited < agentReportBatch {
		t.Errorf("queued after %s; want %s", waited, agentReportBatch)
	}
	got := map[string]bool{}
	for q.Len() > 0 {
		req, _ := q.Get()
		got[req.Name] = true
		q.Done(req)
	}
	if !got["home"] || !got["work"] || len(got) != 2 {
		t.Errorf("queued %v, want home and work once each", got)
	}
}

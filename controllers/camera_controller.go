package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/camerastatus"
	"github.com/camfleet/camfleet/internal/publication"
)

// The controller reads Nodes only to tell whether a Camera's node exists, as metadata.
//
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch

// CameraReconciler resolves each Camera's TokenPolicy and Node and sums up, in Ready, what the
// camera's agent reports, noticing when the agent or the frames go quiet. It owns only its
// own status fields (tokenPolicy, observedGeneration and the Ready, PolicyResolved and
// NodeResolved conditions), written by server-side apply, so it never overwrites the agent's.
type CameraReconciler struct {
	client.Client
	Recorder      events.EventRecorder
	Clock         clock.PassiveClock
	DefaultPolicy types.NamespacedName
}

// cameraNodeField indexes Cameras by spec.nodeName, so a Node coming or going finds its
// cameras without listing every Camera.
const cameraNodeField = ".spec.nodeName"

// Reconcile computes the controller's part of one Camera's status, applies it when it changed,
// and wakes again when the agent's heartbeat would grow too old.
func (r *CameraReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cam := &camv1.Camera{}
	if err := r.Get(ctx, req.NamespacedName, cam); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := r.Clock.Now()
	facts, err := r.resolve(ctx, cam)
	if err != nil {
		return ctrl.Result{}, err
	}
	conds := cameraConditions(cam, facts, now)
	before := meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionReady)
	if err := r.applyStatus(ctx, cam, facts, conds, now); err != nil {
		return ctrl.Result{}, err
	}
	r.announce(cam, before, meta.FindStatusCondition(conds, camv1.ConditionReady))
	var res ctrl.Result
	if next := nextCameraDeadline(cam, now); !next.IsZero() {
		res.RequeueAfter = next.Sub(now)
	}
	return res, nil
}

// resolve finds the Camera's governing TokenPolicy and its Node.
func (r *CameraReconciler) resolve(ctx context.Context, cam *camv1.Camera) (cameraFacts, error) {
	f := cameraFacts{policy: publication.GoverningPolicy(cam, r.DefaultPolicy)}
	if f.policy.Name != "" {
		err := r.Get(ctx, f.policy, &camv1.TokenPolicy{})
		if client.IgnoreNotFound(err) != nil {
			return f, fmt.Errorf("read TokenPolicy %s of camera %s: %w", f.policy, client.ObjectKeyFromObject(cam), err)
		}
		f.policyFound = err == nil
	}
	node := &metav1.PartialObjectMetadata{}
	node.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
	err := r.Get(ctx, types.NamespacedName{Name: cam.Spec.NodeName}, node)
	if client.IgnoreNotFound(err) != nil {
		return f, fmt.Errorf("read Node %s of camera %s: %w", cam.Spec.NodeName, client.ObjectKeyFromObject(cam), err)
	}
	f.nodeFound = err == nil
	return f, nil
}

// applyStatus applies the controller's fields of the Camera's status when they differ from
// what is stored. Condition transition times move only when a condition's status changes.
func (r *CameraReconciler) applyStatus(ctx context.Context, cam *camv1.Camera, f cameraFacts, conds []metav1.Condition, now time.Time) error {
	var owned []metav1.Condition
	for _, t := range []string{camv1.ConditionReady, camv1.ConditionPolicyResolved, camv1.ConditionNodeResolved} {
		if c := meta.FindStatusCondition(cam.Status.Conditions, t); c != nil {
			owned = append(owned, *c)
		}
	}
	was := append([]metav1.Condition(nil), owned...)
	applyConditions(&owned, conds, cam.Generation, now)
	st := camv1.CameraStatus{Conditions: owned, ObservedGeneration: cam.Generation}
	if f.policy.Name != "" {
		st.TokenPolicy = f.policy.String()
	}
	if camerastatus.SameConditions(was, owned) && cam.Status.ObservedGeneration == st.ObservedGeneration && cam.Status.TokenPolicy == st.TokenPolicy {
		return nil
	}
	err := camerastatus.Apply(ctx, r.Client, client.ObjectKeyFromObject(cam), st, camerastatus.Controller)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// announce emits an Event when the camera's Ready changes reason: a Warning when it stops
// being Ready (AgentLost, NoFrames, a missing policy or node...), a Normal one when it is
// Ready again.
func (r *CameraReconciler) announce(cam *camv1.Camera, before, after *metav1.Condition) {
	if r.Recorder == nil || after == nil || (before != nil && before.Status == after.Status && before.Reason == after.Reason) {
		return
	}
	passing := func(c *metav1.Condition) bool {
		return c == nil || c.Reason == camv1.ReasonProgressing || c.Reason == camv1.ReasonWaitingForAgent
	}
	switch {
	case after.Status == metav1.ConditionTrue && passing(before):
		r.Recorder.Eventf(cam, nil, corev1.EventTypeNormal, "Ready", "Summarize", "%s", after.Message)
	case after.Status == metav1.ConditionTrue:
		r.Recorder.Eventf(cam, nil, corev1.EventTypeNormal, "Recovered", "Summarize", "ready again after %s: %s", before.Reason, after.Message)
	case passing(after):
		// Passing states of every new or edited camera: the condition says it, no Event.
	default:
		r.Recorder.Eventf(cam, nil, corev1.EventTypeWarning, after.Reason, "Summarize", "%s", after.Message)
	}
}

// SetupWithManager registers the reconciler: it watches Cameras (the agent's reports among
// them), and the TokenPolicies that govern them and Nodes (as metadata only) coming and going,
// which is all it reads of them.
func (r *CameraReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &camv1.Camera{}, cameraNodeField, func(o client.Object) []string {
		if cam, ok := o.(*camv1.Camera); ok {
			return []string{cam.Spec.NodeName}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index Cameras by node: %w", err)
	}
	node := &metav1.PartialObjectMetadata{}
	node.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
	return ctrl.NewControllerManagedBy(mgr).
		For(&camv1.Camera{}).
		Watches(&camv1.TokenPolicy{}, handler.EnqueueRequestsFromMapFunc(r.camerasOfPolicy), builder.WithPredicates(comesOrGoes)).
		Watches(node, handler.EnqueueRequestsFromMapFunc(r.camerasOfNode), builder.OnlyMetadata, builder.WithPredicates(comesOrGoes)).
		Named("camera").
		// Cameras are independent, and a reconcile mostly waits on its status patch: a fleet
		// coming up writes thousands of them.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// camerasOfPolicy maps a TokenPolicy event to the Cameras it governs, through the index the
// TokenPolicy controller keeps.
func (r *CameraReconciler) camerasOfPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	return r.camerasMatching(ctx, client.MatchingFields{cameraPolicyField: client.ObjectKeyFromObject(o).String()})
}

// camerasOfNode maps a Node event to the Cameras on that node.
func (r *CameraReconciler) camerasOfNode(ctx context.Context, o client.Object) []reconcile.Request {
	return r.camerasMatching(ctx, client.MatchingFields{cameraNodeField: o.GetName()})
}

func (r *CameraReconciler) camerasMatching(ctx context.Context, sel client.MatchingFields) []reconcile.Request {
	var cams camv1.CameraList
	if err := r.List(ctx, &cams, sel); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list cameras", "selector", fmt.Sprint(sel))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(cams.Items))
	for i := range cams.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&cams.Items[i])})
	}
	return reqs
}

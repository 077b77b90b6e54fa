package controllers

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Which watch events wake which reconciler. In a fleet, Cameras change all the time (every
// agent's heartbeat is a status write) and so do TokenPolicies (the agents' count moves with
// every report during a rotation) and Nodes (a kubelet's status updates); a reconciler woken
// by changes it does not read spends a 1000-node fleet's controller on nothing, and delays
// the changes it does read behind them.

// comesOrGoes passes creations and deletions only: for a watched object whose existence is all
// a reconciler reads (a Camera's policy and Node, for the Camera controller).
var comesOrGoes = predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}

// agentReportChanged passes Camera events that can change a TokenPolicy's reconcile: which
// policy and node a Camera counts for, whether it is suspended, and the keys its agent
// reports. A heartbeat, a frame rate or a motion count passes no policy reconcile.
var agentReportChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	old, ok1 := e.ObjectOld.(*camv1.Camera)
	cur, ok2 := e.ObjectNew.(*camv1.Camera)
	if !ok1 || !ok2 {
		return true
	}
	return old.Spec.Suspend != cur.Spec.Suspend || old.Spec.NodeName != cur.Spec.NodeName ||
		!equality.Semantic.DeepEqual(old.Spec.TokenPolicyRef, cur.Spec.TokenPolicyRef) ||
		!slices.Equal(old.Status.LoadedKeyIDs, cur.Status.LoadedKeyIDs) ||
		old.DeletionTimestamp.IsZero() != cur.DeletionTimestamp.IsZero()
}}

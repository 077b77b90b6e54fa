package controllers

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// specError is a spec the controller cannot act on: only a change by the user helps. It
// carries the reason that Stalled, Ready and the Warning Event show, and a message that names
// the field and what to do (as Flux's serror.Generic does), so that no condition ever shows Go's
// error chain ("terminal error: ...") instead.
type specError struct{ Reason, Message string }

func (e *specError) Error() string { return e.Message }

// refuse is a specError with a formatted message.
func refuse(reason, format string, args ...any) error {
	return &specError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// terminal is what Reconcile returns for a phase's error. A refused spec is reported in a
// Warning Event and returned as a reconcile.TerminalError, so controller-runtime does not
// retry what only a spec change can fix (the spec change itself wakes the reconciler); any
// other error is returned as is, to be retried with backoff.
func terminal(rec events.EventRecorder, obj runtime.Object, err error) error {
	var refused *specError
	if !errors.As(err, &refused) {
		return err
	}
	if rec != nil {
		rec.Eventf(obj, nil, corev1.EventTypeWarning, refused.Reason, "Validate", "%s", refused.Message)
	}
	return reconcile.TerminalError(err)
}

// stalledConditions are the conditions of an object whose spec was refused: Ready False and
// Stalled True, both with the refusal's reason and its plain message. ok is false when err
// is no refusal.
func stalledConditions(err error) (_ []metav1.Condition, ok bool) {
	var refused *specError
	if !errors.As(err, &refused) {
		return nil, false
	}
	return []metav1.Condition{
		{Type: camv1.ConditionReady, Status: metav1.ConditionFalse, Reason: refused.Reason, Message: refused.Message},
		{Type: camv1.ConditionStalled, Status: metav1.ConditionTrue, Reason: refused.Reason, Message: refused.Message},
	}, true
}

package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cond is a computed condition; applyConditions stamps its generation and time.
func cond(t string, s metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
}

// applyConditions writes the computed conditions into an object's status and drops the
// optional (abnormal-true) types the computation no longer reports. A condition's transition
// time moves only when its status changes.
func applyConditions(current *[]metav1.Condition, computed []metav1.Condition, generation int64, now time.Time, optional ...string) {
	for _, c := range computed {
		c.ObservedGeneration = generation
		c.LastTransitionTime = metav1.NewTime(now)
		meta.SetStatusCondition(current, c)
	}
	for _, t := range optional {
		if meta.FindStatusCondition(computed, t) == nil {
			meta.RemoveStatusCondition(current, t)
		}
	}
}

// patchStatus writes obj's status as one merge patch against base, and writes nothing when
// nothing changed, so reconciling a settled object costs no API write.
func patchStatus(ctx context.Context, c client.Client, obj, base client.Object) error {
	patch := client.MergeFrom(base)
	data, err := patch.Data(obj)
	if err != nil {
		return fmt.Errorf("status patch of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	if string(data) == "{}" {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, patch, fieldOwner); err != nil {
		return fmt.Errorf("patch status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

package controllers

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

// tokenOutcome is how a reconcile of an AccessToken ended, for its conditions.
type tokenOutcome struct {
	Err error
	// Waiting says which dependency is not ready.
	Waiting    string
	SecretName string
	Token      *token.Unverified
	Renewal    time.Time
}

// accessTokenConditions is the pure mapping from a reconcile's outcome to conditions: Ready
// always; Reconciling or Stalled only when abnormal.
func accessTokenConditions(o tokenOutcome) []metav1.Condition {
	if stalled, ok := stalledConditions(o.Err); ok {
		return stalled
	}
	switch {
	case o.Err != nil:
		// Generic: API errors can be long; the log says more.
		return []metav1.Condition{
			cond(camv1.ConditionReady, metav1.ConditionFalse, "ReconcileFailed", "the last attempt to issue the token failed; retrying"),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonProgressing, "retrying after an error")}
	case o.Waiting != "":
		return []metav1.Condition{
			cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonDependencyNotReady, o.Waiting),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonDependencyNotReady, o.Waiting)}
	}
	msg := fmt.Sprintf("Secret %s holds token %s signed by key %s", o.SecretName, o.Token.ID, o.Token.KeyID)
	if o.Token.Expiry.IsZero() {
		msg += "; it never expires"
	} else {
		msg += fmt.Sprintf("; it expires at %s and is renewed at %s", o.Token.Expiry.Format(time.RFC3339), o.Renewal.Format(time.RFC3339))
	}
	return []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionTrue, camv1.ReasonSucceeded, msg)}
}

// setTokenStatus mirrors the token in the Secret into status: public facts only.
func setTokenStatus(st *camv1.AccessTokenStatus, t *token.Unverified, renewal time.Time) {
	ts := func(v time.Time) *metav1.Time {
		if v.IsZero() {
			return nil
		}
		m := metav1.NewTime(v)
		return &m
	}
	st.TokenID, st.KeyID = t.ID, t.KeyID
	st.IssuedTime, st.ExpirationTime, st.RenewalTime = ts(t.IssuedAt), ts(t.Expiry), ts(renewal)
}

// patchStatus computes the status from what the run found and did, and writes it in one
// patch, only when it changed: a settled AccessToken costs no write.
func (r *AccessTokenReconciler) patchStatus(ctx context.Context, base *camv1.AccessToken, run *tokenRun, reconcileErr error) error {
	at := run.at
	o := tokenOutcome{Err: reconcileErr, Waiting: run.waiting, SecretName: at.Spec.SecretName, Token: run.current, Renewal: run.renewal()}
	if reconcileErr == nil && run.waiting == "" && run.current != nil {
		setTokenStatus(&at.Status, run.current, o.Renewal)
		at.Status.ObservedGeneration = at.Generation
	}
	applyConditions(&at.Status.Conditions, accessTokenConditions(o), at.Generation, run.now, camv1.ConditionReconciling, camv1.ConditionStalled)
	return patchStatus(ctx, r.Client, at, base)
}

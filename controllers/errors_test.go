package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
)

// TestStalledConditionsShowThePlainMessage: a refused spec, however it was wrapped on its way
// out of Reconcile (as a reconcile.TerminalError, with context), gives both kinds the same
// Ready False and Stalled True conditions carrying the refusal's reason and exactly its
// message: never "terminal error: ..." nor any other part of Go's error chain.
func TestStalledConditionsShowThePlainMessage(t *testing.T) {
	const msg = "spec.rotation.period (1h0m0s) must be longer than spec.rotation.publishAhead (1h0m0s)"
	refused := refuse(camv1.ReasonInvalidSpec, "%s", msg)
	policy := &camv1.TokenPolicy{}
	policy.Name = "home"
	kinds := map[string]func(error) []metav1.Condition{
		"TokenPolicy": func(err error) []metav1.Condition {
			return policyConditions(policy, &policyRun{set: &keys.Set{}}, err)
		},
		"AccessToken": func(err error) []metav1.Condition { return accessTokenConditions(tokenOutcome{Err: err}) },
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"as returned by Reconcile", reconcile.TerminalError(refused)},
		{"wrapped with context first", reconcile.TerminalError(fmt.Errorf("resolve spec of ns/home: %w", refused))},
		{"not terminal", refused},
	} {
		for kind, conditions := range kinds {
			t.Run(kind+" "+tc.name, func(t *testing.T) {
				got := conditions(tc.err)
				ready, stalled := meta.FindStatusCondition(got, camv1.ConditionReady), meta.FindStatusCondition(got, camv1.ConditionStalled)
				if len(got) != 2 || ready == nil || stalled == nil {
					t.Fatalf("conditions %+v, want Ready and Stalled", got)
				}
				for _, c := range []*metav1.Condition{ready, stalled} {
					if c.Reason != camv1.ReasonInvalidSpec || c.Message != msg {
						t.Errorf("%s: reason %q message %q, want %q %q", c.Type, c.Reason, c.Message, camv1.ReasonInvalidSpec, msg)
					}
				}
				if ready.Status != metav1.ConditionFalse || stalled.Status != metav1.ConditionTrue {
					t.Errorf("Ready %s, Stalled %s", ready.Status, stalled.Status)
				}
			})
		}
	}
}

// TestTerminalStopsRetriesOnlyForARefusedSpec: a refused spec leaves Reconcile as a
// reconcile.TerminalError, after a Warning Event with its reason and plain message; any other
// error is returned unchanged, to be retried, and emits nothing.
func TestTerminalStopsRetriesOnlyForARefusedSpec(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	at := &camv1.AccessToken{}
	refused := refuse(ReasonTTLTooLong, "spec.ttl 5h0m0s exceeds TokenPolicy tp's maxTTL 4h0m0s")
	got := terminal(rec, at, fmt.Errorf("resolve: %w", refused))
	if !errors.Is(got, reconcile.TerminalError(nil)) || !errors.Is(got, refused) {
		t.Fatalf("a refused spec gave %v, want a terminal error wrapping the refusal", got)
	}
	if ev := <-rec.Events; ev != "Warning TTLTooLong spec.ttl 5h0m0s exceeds TokenPolicy tp's maxTTL 4h0m0s" {
		t.Errorf("Event %q", ev)
	}
	transient := errors.New("etcd is down")
	if got := terminal(rec, at, transient); !errors.Is(got, transient) || errors.Is(got, reconcile.TerminalError(nil)) {
		t.Fatalf("a transient error became %v, want it returned to be retried", got)
	}
	select {
	case ev := <-rec.Events:
		t.Errorf("a transient error emitted %q", ev)
	default:
	}
	if strings.Contains(refused.Error(), "terminal") {
		t.Errorf("the refusal's own text %q carries Go's error chain", refused.Error())
	}
}

package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

func TestAccessTokenConditions(t *testing.T) {
	tok := &token.Unverified{KeyID: "k1", Claims: token.Claims{ID: "jti-1", IssuedAt: t0, Expiry: t0.Add(2 * time.Hour)}}
	type want struct{ ready, reason, other, contains string }
	for _, tc := range []struct {
		name string
		o    tokenOutcome
		want want
	}{
		{"refused", tokenOutcome{Err: fmt.Errorf("wrapped: %w", refuse(ReasonTTLTooLong, "spec.ttl too long"))}, want{"False", ReasonTTLTooLong, camv1.ConditionStalled, "spec.ttl too long"}},
		{"API error", tokenOutcome{Err: errors.New("etcd is down: a long message")}, want{"False", "ReconcileFailed", camv1.ConditionReconciling, "retrying"}},
		{"waiting", tokenOutcome{Waiting: "TokenPolicy tp is not Ready"}, want{"False", camv1.ReasonDependencyNotReady, camv1.ConditionReconciling, "TokenPolicy tp is not Ready"}},
		{"ready", tokenOutcome{SecretName: "s", Token: tok, Renewal: t0.Add(90 * time.Minute)}, want{"True", camv1.ReasonSucceeded, "", "Secret s holds token jti-1 signed by key k1; it expires at 2026-01-01T02:00:00Z and is renewed at 2026-01-01T01:30:00Z"}},
		{"ready, never expires", tokenOutcome{SecretName: "s", Token: &token.Unverified{KeyID: "k1", Claims: token.Claims{ID: "jti-2"}}}, want{"True", camv1.ReasonSucceeded, "", "never expires"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conds := accessTokenConditions(tc.o)
			if len(conds) == 0 || conds[0].Type != camv1.ConditionReady || string(conds[0].Status) != tc.want.ready || conds[0].Reason != tc.want.reason || !strings.Contains(conds[0].Message, tc.want.contains) {
				t.Fatalf("got %+v", conds)
			}
			if tc.want.other == "" && len(conds) != 1 || tc.want.other != "" && (len(conds) != 2 || conds[1].Type != tc.want.other || conds[1].Status != metav1.ConditionTrue) {
				t.Fatalf("got %+v, want Ready and %q", conds, tc.want.other)
			}
			if strings.Contains(conds[0].Message, "etcd") {
				t.Fatal("an API error's text in a condition")
			}
		})
	}
}

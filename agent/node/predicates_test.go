package node

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/event"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func TestMaterialChangedPassesWhatTheKeyringEnforces(t *testing.T) {
	base := func() *camv1.TokenPolicy {
		p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"}},
			Status: camv1.TokenPolicyStatus{Issuer: "https://tokens.test/p", ActiveKeyID: "k1", Agents: "3/4",
				Verification: &camv1.VerificationStatus{JWKS: `{"keys":[]}`}}}
		p.Namespace, p.Name = "cams", "home"
		return p
	}
	for _, tc := range []struct {
		name   string
		change func(p *camv1.TokenPolicy)
		pass   bool
	}{
		{"agents count", func(p *camv1.TokenPolicy) { p.Status.Agents, p.Status.AgentsLoaded = "4/4", 4 }, false},
		{"conditions", func(p *camv1.TokenPolicy) { p.Status.Conditions = nil; p.ResourceVersion = "7" }, false},
		{"a key published", func(p *camv1.TokenPolicy) { p.Status.Verification.JWKS = `{"keys":[{}]}` }, true},
		{"a token revoked", func(p *camv1.TokenPolicy) { p.Status.Verification.RevokedTokenIDs = []string{"j"} }, true},
		{"the active key", func(p *camv1.TokenPolicy) { p.Status.ActiveKeyID = "k2" }, true},
		{"the audience", func(p *camv1.TokenPolicy) { p.Spec.Audience = []string{"other"} }, true},
		{"query tokens allowed", func(p *camv1.TokenPolicy) { p.Spec.Tokens.AllowQueryToken = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := base()
			tc.change(cur)
			if got := materialChanged.Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: cur}); got != tc.pass {
				t.Errorf("passes %v, want %v", got, tc.pass)
			}
		})
	}
}

package trust

import (
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

// TestExternalKeyReusingOurKidIsLeftOut: kids are public, so an external issuer's JWKS may
// copy the policy's own kid. That issuer is left out with a reason; the policy's own tokens
// still verify (security review finding: before, every token of the policy failed).
func TestExternalKeyReusingOurKidIsLeftOut(t *testing.T) {
	own, _ := token.GenerateSigningKey(token.EdDSA)
	other, _ := token.GenerateSigningKey(token.EdDSA)
	ownSet, _ := token.NewKeySet(own.PublicKey())
	ownJWKS, _ := ownSet.MarshalJWKS()
	forged := other.PublicKey()
	forged.KeyID = own.KeyID
	extSet, err := token.NewKeySet(forged)
	if err != nil {
		t.Fatal(err)
	}
	extJWKS, _ := extSet.MarshalJWKS()
	const iss = "https://tokens.test/policies/cams/home"
	p := &camv1.TokenPolicy{}
	p.Spec.Audience = []string{"camfleet"}
	p.Spec.ExternalIssuers = []camv1.ExternalIssuer{{Issuer: "https://evil.test", JWKSConfigMapRef: &camv1.ConfigMapKeyReference{Name: "x"}}}
	clk := clocktesting.NewFakeClock(time.Now())
	v, problems, err := Verifier(p, iss, Published{JWKS: ownJWKS, External: map[string][]byte{"https://evil.test": extJWKS}}, AccessType, clk)
	if err != nil {
		t.Fatalf("one external key broke the policy: %v", err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "reuses a kid") {
		t.Errorf("problems %v", problems)
	}
	now := clk.Now()
	tok, _ := token.Sign(token.Claims{Issuer: iss, Subject: "a", Audience: []string{"camfleet"}, IssuedAt: now, Expiry: now.Add(time.Hour)}, AccessType, own)
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("the policy's own token: %v", err)
	}
}

// TestAudiencesPerIssuer: an external issuer's tokens must carry its own audience, and that
// audience admits none of the policy's own tokens.
func TestAudiencesPerIssuer(t *testing.T) {
	own, _ := token.GenerateSigningKey(token.EdDSA)
	ext, _ := token.GenerateSigningKey(token.ES256)
	ownSet, _ := token.NewKeySet(own.PublicKey())
	ownJWKS, _ := ownSet.MarshalJWKS()
	extSet, _ := token.NewKeySet(ext.PublicKey())
	extJWKS, _ := extSet.MarshalJWKS()
	const iss, extIss = "https://tokens.test/policies/cams/home", "https://ha.test"
	p := &camv1.TokenPolicy{}
	p.Spec.Audience = []string{"camfleet"}
	p.Spec.ExternalIssuers = []camv1.ExternalIssuer{{Issuer: extIss, Audience: "home-assistant", JWKSConfigMapRef: &camv1.ConfigMapKeyReference{Name: "x"}}}
	clk := clocktesting.NewFakeClock(time.Now())
	v, problems, err := Verifier(p, iss, Published{JWKS: ownJWKS, External: map[string][]byte{extIss: extJWKS}}, AccessType, clk)
	if err != nil || len(problems) != 0 {
		t.Fatalf("verifier: %v %v", err, problems)
	}
	now := clk.Now()
	sign := func(k token.SigningKey, issuer, aud string) string {
		tok, err := token.Sign(token.Claims{Issuer: issuer, Subject: "a", Audience: []string{aud}, IssuedAt: now, Expiry: now.Add(time.Hour)}, AccessType, k)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name string
		tok  string
		ok   bool
	}{
		{"own token, own audience", sign(own, iss, "camfleet"), true},
		{"own token, the external issuer's audience", sign(own, iss, "home-assistant"), false},
		{"external token, its audience", sign(ext, extIss, "home-assistant"), true},
		{"external token, the policy's audience", sign(ext, extIss, "camfleet"), false},
	} {
		if _, err := v.Verify(tc.tok); (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

package fleet

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

const issuer = "https://tokens.test/policies/cams/home"

// published is a policy "cams/home" whose status publishes key k (and revokes "revoked-id"),
// as the controller writes it.
func published(t *testing.T, k token.SigningKey) *camv1.TokenPolicy {
	t.Helper()
	ks, err := token.NewKeySet(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Audience: []string{"camfleet"},
		Tokens:   camv1.TokenLifetimes{MaxTTL: &metav1.Duration{Duration: time.Hour}, RefreshTTL: &metav1.Duration{Duration: time.Hour}},
	}, Status: camv1.TokenPolicyStatus{Issuer: issuer, ActiveKeyID: k.KeyID, Verification: &camv1.VerificationStatus{JWKS: string(jwks), RevokedTokenIDs: []string{"revoked-id"}}}}
	p.Namespace, p.Name = "cams", "home"
	return p
}

func key(t *testing.T) token.SigningKey {
	t.Helper()
	k, err := token.GenerateSigningKey(token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signed(t *testing.T, k token.SigningKey, typ string, edit func(*token.Claims)) string {
	t.Helper()
	c := token.Claims{Issuer: issuer, Subject: "alice", Audience: []string{"camfleet"}, IssuedAt: now.Add(-time.Minute),
		Expiry: now.Add(14 * time.Minute), ID: "id-1", Perms: []string{"camera:snapshot:cams/*"}}
	if edit != nil {
		edit(&c)
	}
	s, err := token.Sign(c, typ, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withHeader replaces a token's header, keeping its claims and signature.
func withHeader(tok, header string) string {
	parts := strings.Split(tok, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1] + "." + parts[2]
}

func TestCheckSaysWhichRuleRefusesAToken(t *testing.T) {
	k, other := key(t), key(t)
	p := published(t, k)
	good := signed(t, k, token.TypeAccess, nil)
	parts := strings.Split(good, ".")
	cases := []struct {
		name   string
		tok    string
		reason token.Reason
		says   []string
	}{
		{"expired", signed(t, k, token.TypeAccess, func(c *token.Claims) {
			c.IssuedAt, c.Expiry = now.Add(-3*time.Hour), now.Add(-2*time.Hour-30*time.Minute)
		}),
			token.ReasonExpired, []string{"expired at 2026-12-03T07:30:00Z", "150m ago", "leeway 30s"}},
		{"another policy's key", signed(t, other, token.TypeAccess, nil), token.ReasonUnknownKey, []string{other.KeyID, "not one of the keys policy cams/home publishes", ShortKeyID(k.KeyID)}},
		{"wrong audience", signed(t, k, token.TypeAccess, func(c *token.Claims) { c.Audience = []string{"grafana"} }), token.ReasonWrongAudience, []string{`["grafana"]`, `["camfleet"]`}},
		{"wrong issuer", signed(t, k, token.TypeAccess, func(c *token.Claims) { c.Issuer = "https://evil.test" }), token.ReasonWrongIssuer, []string{`"https://evil.test"`, issuer}},
		{"a refresh token", signed(t, k, token.TypeRefresh, nil), token.ReasonWrongType, []string{"refresh token"}},
		{"revoked", signed(t, k, token.TypeAccess, func(c *token.Claims) { c.ID = "revoked-id" }), token.ReasonRevoked, []string{"revoked-id", "revocation list"}},
		{"too long a life", signed(t, k, token.TypeAccess, func(c *token.Claims) { c.Expiry = now.Add(5 * time.Hour) }), token.ReasonLifetimeTooLong, []string{"1h0m0s"}},
		{"a Bearer prefix", "Bearer " + good, token.ReasonMalformed, []string{`starts with "Bearer "`}},
		{"padding", good + "==", token.ReasonMalformed, []string{"padding"}},
		{"a JWE", "a.b.c.d.e", token.ReasonMalformed, []string{"five segments"}},
		{"alg none", withHeader(good, `{"alg":"none","kid":"`+k.KeyID+`","typ":"at+jwt"}`), token.ReasonUnsupportedAlgorithm, []string{`"none"`}},
		{"a jku", withHeader(good, `{"alg":"EdDSA","kid":"`+k.KeyID+`","typ":"at+jwt","jku":"https://evil.test/jwks"}`), token.ReasonForbiddenHeader, []string{"carries jku"}},
		{"an altered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+issuer+`","sub":"root","aud":"camfleet","exp":9999999999}`)) + "." + parts[2],
			token.ReasonBadSignature, []string{"changed after it was signed"}},
		{"no kid", withHeader(good, `{"alg":"EdDSA","typ":"at+jwt"}`), token.ReasonMissingKeyID, []string{"names no key"}},
		{"an ES256 header on an EdDSA key", withHeader(good, `{"alg":"ES256","kid":"`+k.KeyID+`","typ":"at+jwt"}`), token.ReasonAlgorithmMismatch, []string{"ES256", "EdDSA key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Check(p, tc.tok, now)
			if err != nil {
				t.Fatal(err)
			}
			if v.Valid || v.Reason != tc.reason {
				t.Fatalf("valid %v reason %q, want refused with %q (%s)", v.Valid, v.Reason, tc.reason, v.Explanation)
			}
			for _, s := range tc.says {
				if !strings.Contains(v.Explanation, s) {
					t.Errorf("explanation %q does not say %q", v.Explanation, s)
				}
			}
		})
	}
}

func TestCheckAcceptsAGoodToken(t *testing.T) {
	k := key(t)
	v, err := Check(published(t, k), signed(t, k, token.TypeAccess, nil), now)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Valid || v.Subject != "alice" || v.KeyID != k.KeyID || !slices.Equal(v.Permissions, []string{"camera:snapshot:cams/*"}) ||
		v.Expiry == nil || !v.Expiry.Equal(now.Add(14*time.Minute)) || v.Decoded.Claims["sub"] != "alice" || v.Decoded.Header["typ"] != "at+jwt" {
		t.Errorf("got %+v", v)
	}
}

func TestCheckNeedsPublishedKeys(t *testing.T) {
	p := published(t, key(t))
	p.Status.Verification = nil
	if _, err := Check(p, "x.y.z", now); err == nil || !strings.Contains(err.Error(), "published no keys") {
		t.Errorf("got %v", err)
	}
}

// TestEveryReasonHasASentence: a reason the verifier gains later must get its own sentence
// here, or verify would fall back to the bare code.
func TestEveryReasonHasASentence(t *testing.T) {
	for _, r := range token.Reasons() {
		if got := Explain(r, Facts{}); strings.Contains(got, "refused it with reason") {
			t.Errorf("reason %s has no sentence: %q", r, got)
		}
	}
}

func TestIssuedBy(t *testing.T) {
	p := published(t, key(t))
	p.Status.Verification.ExternalIssuers = []camv1.ExternalIssuerStatus{{Issuer: "https://ha.test"}}
	for iss, want := range map[string]bool{issuer: true, "https://ha.test": true, "https://other.test": false, "": false} {
		if got := IssuedBy(p, iss); got != want {
			t.Errorf("IssuedBy(%q) = %v", iss, got)
		}
	}
}

package keyring

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

const iss = "https://tokens.test/policies/cams/home"

var key = types.NamespacedName{Namespace: "cams", Name: "home"}

func jwks(t testing.TB, keys ...token.SigningKey) string {
	t.Helper()
	var pubs []token.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.PublicKey())
	}
	ks, err := token.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ks.MarshalJWKS()
	return string(b)
}

func sign(t *testing.T, k token.SigningKey, issuer, id string, now time.Time) string {
	t.Helper()
	tok, err := token.Sign(token.Claims{Issuer: issuer, Subject: "alice", Audience: []string{"camfleet"}, IssuedAt: now, Expiry: now.Add(time.Hour), ID: id, Perms: []string{"camera:stream:cams/*"}}, token.TypeAccess, k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestUpdateFollowsStatus: nothing is accepted before the status publishes keys; a new key
// is accepted, and a removed key or revoked ID refused, from the next Update on.
func TestUpdateFollowsStatus(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	k1, _ := token.GenerateSigningKey(token.EdDSA)
	k2, _ := token.GenerateSigningKey(token.EdDSA)
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = key.Namespace, key.Name
	p.Spec.Audience = []string{"camfleet"}
	kr := New(clk)
	if err := kr.Update(p); err != nil {
		t.Fatal(err)
	}
	t1 := sign(t, k1, iss, "one", clk.Now())
	if _, err := kr.Verify(key, t1); !errors.Is(err, ErrUnknownPolicy) {
		t.Fatalf("before publication: %v", err)
	}
	p.Status.Issuer = iss
	p.Status.Verification = &camv1.VerificationStatus{JWKS: jwks(t, k1)}
	if err := kr.Update(p); err != nil {
		t.Fatal(err)
	}
	who, err := kr.Verify(key, t1)
	if err != nil || who.Subject != "alice" || !who.Allows("camera", "stream", "cams/front") || who.Allows("camera", "snapshot", "cams/front") {
		t.Fatalf("published key: %+v %v", who, err)
	}
	t2 := sign(t, k2, iss, "two", clk.Now())
	if _, err := kr.Verify(key, t2); err == nil {
		t.Fatal("a key not yet published was accepted")
	}
	p.Status.Verification.JWKS = jwks(t, k1, k2)
	_ = kr.Update(p)
	if _, err := kr.Verify(key, t2); err != nil {
		t.Fatalf("freshly published key refused: %v", err)
	}
	if loaded, _, _ := kr.Keys(key); len(loaded) != 2 {
		t.Errorf("loaded %v", loaded)
	}
	p.Status.Verification.RevokedTokenIDs = []string{"two"}
	_ = kr.Update(p)
	if kr.Still(key, t2) {
		t.Error("a revoked ID still verifies")
	}
	p.Status.Verification = &camv1.VerificationStatus{JWKS: jwks(t, k2)}
	_ = kr.Update(p)
	if kr.Still(key, t1) {
		t.Error("a token of a removed key still verifies")
	}
}

// TestExternalIssuerGetsItsRoles: an external issuer's token is verified with the keys the
// status resolved for it, and grants the roles the policy gives that issuer, not its claims.
func TestExternalIssuerGetsItsRoles(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	own, _ := token.GenerateSigningKey(token.EdDSA)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ext := camv1.ExternalIssuer{Issuer: "https://ha.test", Roles: []string{"viewer"}, PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}
	resolved, err := trust.ExternalJWKS(ext, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = key.Namespace, key.Name
	p.Spec.Audience = []string{"camfleet"}
	p.Spec.Roles = []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:snapshot:cams/*"}}}
	p.Spec.ExternalIssuers = []camv1.ExternalIssuer{ext}
	p.Status.Issuer = iss
	p.Status.Verification = &camv1.VerificationStatus{JWKS: jwks(t, own), ExternalIssuers: []camv1.ExternalIssuerStatus{{Issuer: ext.Issuer, JWKS: string(resolved)}}}
	kr := New(clk)
	if err := kr.Update(p); err != nil {
		t.Fatal(err)
	}
	pub, _ := token.ParseJWKS(resolved)
	extKey := token.SigningKey{KeyID: pub.Keys()[0].KeyID, Algorithm: token.ES256, Signer: ec}
	who, err := kr.Verify(key, sign(t, extKey, ext.Issuer, "x", clk.Now()))
	if err != nil || !who.Allows("camera", "snapshot", "cams/a") || who.Allows("camera", "stream", "cams/a") {
		t.Fatalf("external token: %+v %v", who, err)
	}
	// The external key cannot speak for our own issuer.
	if _, err := kr.Verify(key, sign(t, extKey, iss, "y", clk.Now())); err == nil {
		t.Error("an external key signed for the policy's own issuer")
	}
}

// TestUpdateRebuildsOnlyWhatVerifiesDifferently: a status update that only moves the agents'
// count keeps the verifier (and its cache); a change to the spec or to the published material
// rebuilds it.
func TestUpdateRebuildsOnlyWhatVerifiesDifferently(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	k1, _ := token.GenerateSigningKey(token.EdDSA)
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = key.Namespace, key.Name
	p.Spec.Audience = []string{"camfleet"}
	p.Status.Issuer = iss
	p.Status.Verification = &camv1.VerificationStatus{JWKS: jwks(t, k1)}
	kr := New(clk)
	verifier := func() *token.CachedVerifier {
		kr.mu.RLock()
		defer kr.mu.RUnlock()
		return kr.policies[key].verifier
	}
	if err := kr.Update(p); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func(p *camv1.TokenPolicy)
		rebuild bool
	}{
		{"agents count", func(p *camv1.TokenPolicy) { p.Status.Agents, p.Status.AgentsLoaded = "3/4", 3 }, false},
		{"resource version", func(p *camv1.TokenPolicy) { p.ResourceVersion = "42" }, false},
		{"revoked ID", func(p *camv1.TokenPolicy) { p.Status.Verification.RevokedTokenIDs = []string{"x"} }, true},
		{"active key", func(p *camv1.TokenPolicy) { p.Status.ActiveKeyID = "k2" }, true},
		{"audience", func(p *camv1.TokenPolicy) { p.Spec.Audience = []string{"other"} }, true},
		{"issuer", func(p *camv1.TokenPolicy) { p.Status.Issuer = iss + "/v2" }, true},
	} {
		before, version := verifier(), kr.Version()
		clk.Step(time.Second)
		tc.change(p)
		if err := kr.Update(p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rebuilt := verifier() != before; rebuilt != tc.rebuild {
			t.Errorf("%s: rebuilt %v, want %v", tc.name, rebuilt, tc.rebuild)
		}
		// The version is what tells an agent its state file is stale.
		if moved := kr.Version() != version; moved != tc.rebuild {
			t.Errorf("%s: version moved %v, want %v", tc.name, moved, tc.rebuild)
		}
		if now := kr.LoadedAt(key).Equal(clk.Now()); now != tc.rebuild {
			t.Errorf("%s: loaded at %s (now %s), want now: %v", tc.name, kr.LoadedAt(key), clk.Now(), tc.rebuild)
		}
	}
	// The rebuilt verifier is the one in force: a token of the previous issuer is refused.
	if kr.Still(key, sign(t, k1, iss, "a", clk.Now())) {
		t.Error("a token of the previous issuer still verifies")
	}
	version := kr.Version()
	kr.Remove(types.NamespacedName{Namespace: key.Namespace, Name: "absent"})
	if kr.Version() != version {
		t.Error("removing a policy the keyring does not hold moved its version")
	}
	kr.Remove(key)
	if kr.Version() == version || len(kr.Policies()) != 0 || !kr.LoadedAt(key).IsZero() {
		t.Errorf("after removing %s: version %d (was %d), policies %v", key, kr.Version(), version, kr.Policies())
	}
}

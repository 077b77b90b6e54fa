package issuer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

// TestRefreshRefusesExternalIssuers: a trusted external issuer (here limited to viewer) that
// learns a user's current refresh token ID cannot trade a token it signs for that user's
// session, whatever issuer and type it puts in it. Security review finding, high.
func TestRefreshRefusesExternalIssuers(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	ext := "https://ha.home.example"
	s := newServiceWith(t, bcrypt.MinCost, false, func(p *camv1.TokenPolicy) {
		p.Spec.ExternalIssuers = []camv1.ExternalIssuer{{Issuer: ext, Roles: []string{"viewer"}, SubjectClaim: "sub",
			PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}}
	})
	login := s.login("alice", alicePass)
	rt := str(login.body["refresh_token"])
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(rt, ".")[1])
	var claims struct {
		Iss string `json:"iss"`
		Jti string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Jti == "" {
		t.Fatalf("refresh token claims %s: %v", payload, err)
	}
	kid, _ := token.Thumbprint(pub)
	key := token.SigningKey{KeyID: kid, Algorithm: token.EdDSA, Signer: priv}
	now := s.clock.Now()
	for _, forged := range []struct{ iss, typ string }{{ext, "JWT"}, {ext, token.TypeAccess}, {ext, token.TypeRefresh}, {claims.Iss, token.TypeRefresh}} {
		tok, err := token.Sign(token.Claims{Issuer: forged.iss, Subject: "alice", Audience: []string{claims.Iss}, IssuedAt: now, Expiry: now.Add(time.Hour), ID: claims.Jti}, forged.typ, key)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.do(http.MethodPost, s.path("refresh"), `{"refresh_token":"`+tok+`"}`); r.status != http.StatusUnauthorized {
			t.Errorf("a refresh token signed by the external issuer (iss %s, typ %q) was accepted: %d %s", forged.iss, forged.typ, r.status, r.raw)
		}
	}
	// The real refresh token still works: nothing above touched the session.
	if r := s.do(http.MethodPost, s.path("refresh"), `{"refresh_token":"`+rt+`"}`); r.status != http.StatusOK {
		t.Fatalf("the genuine refresh token: %d %s", r.status, r.raw)
	}
}

package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

func testClaims() Claims {
	return Claims{
		Issuer:    testIssuer,
		Subject:   "alice",
		Audience:  []string{testAudience},
		Expiry:    testNow.Add(time.Hour),
		IssuedAt:  testNow.Add(-time.Minute),
		NotBefore: testNow.Add(-time.Minute),
		ID:        "jti-1",
		Perms:     []string{"camera:stream:cams/*", "events:read"},
	}
}

func allKeys(t testing.TB) []SigningKey {
	k := getKeys(t)
	return []SigningKey{k.ed, k.es, k.rs}
}

func jwxAlg(a Algorithm) jwa.SignatureAlgorithm {
	alg, _ := jwa.LookupSignatureAlgorithm(string(a))
	return alg
}

func TestSignVerifyRoundTrip(t *testing.T) {
	v, _ := newTestVerifier(t)
	for _, k := range allKeys(t) {
		t.Run(string(k.Algorithm), func(t *testing.T) {
			c := testClaims()
			c.Audience = []string{"x", testAudience}
			tok, err := Sign(c, TypeAccess, k)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != "alice" || got.Issuer != testIssuer || got.ID != "jti-1" || got.KeyID != k.KeyID ||
				!got.Expiry.Equal(c.Expiry.Truncate(time.Second)) || !got.IssuedAt.Equal(c.IssuedAt) ||
				!slices.Equal(got.Perms, c.Perms) {
				t.Errorf("Verified = %+v", got)
			}
			if !got.Grants.Allows("camera", "stream", "cams/backyard") || got.Grants.Allows("camera", "snapshot", "cams/backyard") {
				t.Error("compiled grants do not match the perms claim")
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	k := getKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // testing that weak keys are refused
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Claims)) Claims {
		c := testClaims()
		f(&c)
		return c
	}
	cases := []struct {
		name   string
		claims Claims
		typ    string
		key    SigningKey
	}{
		{"no typ", testClaims(), "", k.ed},
		{"no issuer", mod(func(c *Claims) { c.Issuer = "" }), TypeAccess, k.ed},
		{"no subject", mod(func(c *Claims) { c.Subject = "" }), TypeAccess, k.ed},
		{"no audience", mod(func(c *Claims) { c.Audience = nil }), TypeAccess, k.ed},
		{"empty audience", mod(func(c *Claims) { c.Audience = []string{""} }), TypeAccess, k.ed},
		{"exp before iat", mod(func(c *Claims) { c.Expiry = c.IssuedAt.Add(-time.Second) }), TypeAccess, k.ed},
		{"no kid", testClaims(), TypeAccess, SigningKey{Algorithm: EdDSA, Signer: k.ed.Signer}},
		{"no signer", testClaims(), TypeAccess, SigningKey{KeyID: "x", Algorithm: EdDSA}},
		{"HS256", testClaims(), TypeAccess, SigningKey{KeyID: "x", Algorithm: "HS256", Signer: k.ed.Signer}},
		{"alg not fitting the key", testClaims(), TypeAccess, SigningKey{KeyID: "x", Algorithm: ES256, Signer: k.ed.Signer}},
		{"RSA 1024", testClaims(), TypeAccess, SigningKey{KeyID: "x", Algorithm: RS256, Signer: weak}},
		{"ES256 on P-384", testClaims(), TypeAccess, SigningKey{KeyID: "x", Algorithm: ES256, Signer: p384}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if tok, err := Sign(c.claims, c.typ, c.key); err == nil {
				t.Errorf("Sign succeeded: %d bytes", len(tok))
			}
		})
	}
}

func TestSignWireFormat(t *testing.T) {
	k := getKeys(t).ed
	c := testClaims()
	c.Expiry, c.NotBefore, c.ID, c.Perms = time.Time{}, time.Time{}, "", nil
	tok, err := Sign(c, TypeAccess, k)
	if err != nil {
		t.Fatal(err)
	}
	h, p, _ := segments(tok)
	hj, _ := b64.DecodeString(h)
	pj, _ := b64.DecodeString(p)
	if want := `{"alg":"EdDSA","kid":"` + k.KeyID + `","typ":"at+jwt"}`; string(hj) != want {
		t.Errorf("header %s, want %s", hj, want)
	}
	// A single audience is a string; zero times and empty fields are left out.
	if want := `{"iss":"` + testIssuer + `","sub":"alice","aud":"camfleet","iat":` + num(c.IssuedAt) + `}`; string(pj) != want {
		t.Errorf("payload %s, want %s", pj, want)
	}
}

// TestJWXVerifiesOurTokens: tokens we sign are standard JWTs.
func TestJWXVerifiesOurTokens(t *testing.T) {
	for _, k := range allKeys(t) {
		t.Run(string(k.Algorithm), func(t *testing.T) {
			tok, err := Sign(testClaims(), TypeAccess, k)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jwt.Parse([]byte(tok),
				jwt.WithKey(jwxAlg(k.Algorithm), k.Signer.Public()),
				jwt.WithClock(jwt.ClockFunc(func() time.Time { return testNow })),
				jwt.WithIssuer(testIssuer), jwt.WithAudience(testAudience))
			if err != nil {
				t.Fatalf("jwx refused our token: %v", err)
			}
			if sub, _ := parsed.Subject(); sub != "alice" {
				t.Errorf("jwx sees sub %q", sub)
			}
			var perms []any
			if err := parsed.Get("perms", &perms); err != nil || len(perms) != 2 {
				t.Errorf("jwx sees perms %v (%v)", perms, err)
			}
			msg, err := jws.Parse([]byte(tok))
			if err != nil {
				t.Fatal(err)
			}
			hdrs := msg.Signatures()[0].ProtectedHeaders()
			if typ, _ := hdrs.Type(); typ != TypeAccess {
				t.Errorf("jwx sees typ %q", typ)
			}
			if kid, _ := hdrs.KeyID(); kid != k.KeyID {
				t.Errorf("jwx sees kid %q", kid)
			}
			if _, err := jws.Verify([]byte(tok), jws.WithKey(jwxAlg(k.Algorithm), k.Signer.Public())); err != nil {
				t.Errorf("jws.Verify: %v", err)
			}
		})
	}
}

// TestWeVerifyJWXTokens: tokens jwx signs pass our strict verifier.
func TestWeVerifyJWXTokens(t *testing.T) {
	v, _ := newTestVerifier(t)
	for _, k := range allKeys(t) {
		for _, aud := range [][]string{{testAudience}, {"x", testAudience}} {
			t.Run(string(k.Algorithm)+"/"+strings.Join(aud, ","), func(t *testing.T) {
				built, err := jwt.NewBuilder().
					Issuer(testIssuer).Subject("bob").Audience(aud).
					Expiration(testNow.Add(time.Hour)).IssuedAt(testNow).NotBefore(testNow).
					JwtID("jwx-1").Claim("perms", []string{"camera:*"}).Build()
				if err != nil {
					t.Fatal(err)
				}
				hdrs := jws.NewHeaders()
				for name, val := range map[string]string{"kid": k.KeyID, "typ": TypeAccess} {
					if err := hdrs.Set(name, val); err != nil {
						t.Fatal(err)
					}
				}
				signed, err := jwt.Sign(built, jwt.WithKey(jwxAlg(k.Algorithm), k.Signer, jws.WithProtectedHeaders(hdrs)))
				if err != nil {
					t.Fatal(err)
				}
				got, err := v.Verify(string(signed))
				if err != nil {
					t.Fatalf("our verifier refused a jwx token: %v", err)
				}
				if got.Subject != "bob" || got.ID != "jwx-1" || !got.Grants.Allows("camera", "stream") {
					t.Errorf("Verified = %+v", got)
				}
			})
		}
	}
}

func TestNewID(t *testing.T) {
	a, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewID()
	if a == b || len(a) != 22 {
		t.Errorf("NewID gave %q and %q", a, b)
	}
}

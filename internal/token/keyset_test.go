package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// jwkMembers renders a key as JWK members with the given extra members
// (a nil value removes a member).
func jwkMembers(t testing.TB, raw any, extra map[string]any) map[string]any {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for name, v := range extra {
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
	}
	return m
}

func jwks(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseJWKSRoundTrip(t *testing.T) {
	ks := testKeySet(t)
	data, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"k"`} {
		if strings.Contains(string(data), private+":") {
			t.Errorf("JWKS contains private member %s", private)
		}
	}
	again, err := ParseJWKS(data)
	if err != nil {
		t.Fatalf("ParseJWKS of our own JWKS: %v", err)
	}
	if again.Len() != 3 {
		t.Fatalf("%d keys, want 3", again.Len())
	}
	for _, want := range ks.Keys() {
		got, ok := again.Lookup(want.KeyID)
		if !ok {
			t.Fatalf("kid %q missing", want.KeyID)
		}
		if got.Algorithm != want.Algorithm || !got.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.Key) {
			t.Errorf("kid %q differs after a round trip", want.KeyID)
		}
		if got.Issuer != "" {
			t.Errorf("a parsed key is bound to %q before Bind", got.Issuer)
		}
	}
	if _, ok := again.Lookup("nope"); ok {
		t.Error("Lookup found an unknown kid")
	}
	// Marshalling is deterministic, so a controller can skip no-op writes.
	data2, err := again.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(data2) {
		t.Errorf("MarshalJWKS is not stable:\n%s\n%s", data, data2)
	}
	// Our kids are RFC 7638 thumbprints.
	for _, k := range allKeys(t) {
		tp, err := Thumbprint(k.Signer.Public())
		if err != nil || tp != k.KeyID {
			t.Errorf("%s: thumbprint %q, kid %q (%v)", k.Algorithm, tp, k.KeyID, err)
		}
	}
	if _, err := Thumbprint(getKeys(t).ed.Signer); err == nil {
		t.Error("Thumbprint accepted a private key")
	}
}

func TestParseJWKSRefuses(t *testing.T) {
	k := getKeys(t)
	ed := func(extra map[string]any) map[string]any {
		return jwkMembers(t, k.ed.Signer.Public(), merge(map[string]any{"kid": "ed", "alg": "EdDSA", "use": "sig"}, extra))
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"not JSON", []byte("not json")},
		{"a single JWK", func() []byte { b, _ := json.Marshal(ed(nil)); return b }()},
		{"no keys", []byte(`{"keys":[]}`)},
		{"private Ed25519 key", jwks(t, jwkMembers(t, k.ed.Signer, map[string]any{"kid": "ed", "alg": "EdDSA"}))},
		{"private EC key", jwks(t, jwkMembers(t, k.es.Signer, map[string]any{"kid": "es", "alg": "ES256"}))},
		{"private RSA key", jwks(t, jwkMembers(t, k.rs.Signer, map[string]any{"kid": "rs", "alg": "RS256"}))},
		{"RSA with only p", jwks(t, jwkMembers(t, k.rs.Signer.Public(), map[string]any{"kid": "rs", "alg": "RS256", "p": "AQAB"}))},
		{"symmetric key", []byte(`{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}]}`)},
		{"no kid", jwks(t, ed(map[string]any{"kid": nil}))},
		{"empty kid", jwks(t, ed(map[string]any{"kid": ""}))},
		{"no alg", jwks(t, ed(map[string]any{"alg": nil}))},
		{"alg outside the allowlist", jwks(t, jwkMembers(t, k.rs.Signer.Public(), map[string]any{"kid": "rs", "alg": "PS256"}))},
		{"alg none", jwks(t, ed(map[string]any{"alg": "none"}))},
		{"alg ES256 on an Ed25519 key", jwks(t, ed(map[string]any{"alg": "ES256"}))},
		{"alg EdDSA on an RSA key", jwks(t, jwkMembers(t, k.rs.Signer.Public(), map[string]any{"kid": "rs", "alg": "EdDSA"}))},
		{"alg RS256 on an EC key", jwks(t, jwkMembers(t, k.es.Signer.Public(), map[string]any{"kid": "es", "alg": "RS256"}))},
		{"alg ES256 on a P-384 key", jwks(t, jwkMembers(t, p384.Public(), map[string]any{"kid": "es", "alg": "ES256"}))},
		{"RSA 1024", jwks(t, map[string]any{"kty": "RSA", "kid": "rs", "alg": "RS256", "e": "AQAB", "n": b64.EncodeToString(k.rs1024.N.Bytes())})},
		{"use enc", jwks(t, ed(map[string]any{"use": "enc"}))},
		{"key_ops without verify", jwks(t, ed(map[string]any{"key_ops": []string{"encrypt"}}))},
		{"duplicate kid", jwks(t, ed(nil), jwkMembers(t, k.es.Signer.Public(), map[string]any{"kid": "ed", "alg": "ES256"}))},
		{"EC point off the curve", jwks(t, jwkMembers(t, k.es.Signer.Public(), map[string]any{"kid": "es", "alg": "ES256", "y": b64.EncodeToString(make([]byte, 32))}))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks, err := ParseJWKS(c.data)
			if err == nil {
				t.Fatalf("ParseJWKS accepted it: %d keys", ks.Len())
			}
			t.Log(err)
			if strings.Contains(err.Error(), `"d"`) && !strings.Contains(c.name, "private") {
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	// The accepted shape, for contrast: missing "use" is fine for external sets.
	if _, err := ParseJWKS(jwks(t, ed(map[string]any{"use": nil}))); err != nil {
		t.Errorf("a key without use was refused: %v", err)
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestKeySetErrorsHoldNoKeyMaterial(t *testing.T) {
	k := getKeys(t)
	priv := jwkMembers(t, k.ed.Signer, map[string]any{"kid": "ed", "alg": "EdDSA"})
	_, err := ParseJWKS(jwks(t, priv))
	if err == nil {
		t.Fatal("private key accepted")
	}
	if d, _ := priv["d"].(string); d == "" || strings.Contains(err.Error(), d) {
		t.Errorf("error leaks the private key: %v", err)
	}
}

// TestIssuerBinding: a token verifies only with a key of the issuer it names.
func TestIssuerBinding(t *testing.T) {
	ours := testKeySet(t)
	external, err := GenerateSigningKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	const extIssuer = "https://dashboard.example"
	extSet, err := NewKeySet(external.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	extSet, err = extSet.Bind(Binding{Issuer: extIssuer, SubjectClaim: "email", Types: []string{"JWT", ""}})
	if err != nil {
		t.Fatal(err)
	}
	all, err := MergeKeySets(ours, extSet)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := testConfig(t)
	cfg.Keys = all
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edKey := getKeys(t).ed
	ext := validClaims().with("iss", q(extIssuer), "email", q("carol@example.com"))
	cases := []struct {
		name    string
		key     SigningKey
		typ     string // "-" for no typ
		claims  claimSet
		want    Reason
		subject string
	}{
		{"ours with our key", edKey, TypeAccess, validClaims(), "", "alice"},
		{"ours typed JWT", edKey, "JWT", validClaims(), ReasonWrongType, ""},
		{"ours untyped", edKey, "-", validClaims(), ReasonWrongType, ""},
		{"external with its key", external, TypeAccess, ext, ReasonWrongType, ""},
		{"external typed JWT", external, "JWT", ext, "", "carol@example.com"},
		{"external typed application/jwt", external, "application/jwt", ext, "", "carol@example.com"},
		{"external untyped", external, "-", ext, "", "carol@example.com"},
		{"external typed as our refresh token", external, TypeRefresh, ext, ReasonWrongType, ""},
		{"external issuer with our key", edKey, TypeAccess, ext, ReasonWrongIssuer, ""},
		{"our issuer with the external key", external, "JWT", validClaims().with("email", q("x@y")), ReasonWrongIssuer, ""},
		{"external without its subject claim", external, "JWT", ext.without("email"), ReasonMissingClaim, ""},
		{"external with a non-string subject claim", external, "JWT", ext.with("email", "7"), ReasonBadClaim, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hdr(c.key.Algorithm, c.key.KeyID, c.typ)
			if c.typ == "-" {
				h = fmt.Sprintf(`{"alg":%q,"kid":%q}`, c.key.Algorithm, c.key.KeyID)
			}
			got, err := v.Verify(forge(t, c.key, h, c.claims.json()))
			if ReasonOf(err) != c.want {
				t.Fatalf("reason %q, want %q", ReasonOf(err), c.want)
			}
			if err == nil && got.Subject != c.subject {
				t.Errorf("subject %q, want %q", got.Subject, c.subject)
			}
		})
	}

	if _, err := MergeKeySets(ours, ours); err == nil {
		t.Error("merging sets with the same kid succeeded")
	}
	unbound, err := NewKeySet(edKey.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys = unbound
	if _, err := NewVerifier(cfg); err == nil {
		t.Error("a verifier accepted keys bound to no issuer")
	}
	if err := v.SetKeys(unbound); err == nil {
		t.Error("SetKeys accepted keys bound to no issuer")
	}
	if _, err := unbound.BindIssuer(""); err == nil {
		t.Error("bound to an empty issuer")
	}
	if _, err := unbound.Bind(Binding{Issuer: "x", SubjectClaim: "aud"}); err == nil {
		t.Error("bound with a registered claim as the subject claim")
	}
}

func TestNewKeySetRefuses(t *testing.T) {
	k := getKeys(t)
	pk := k.ed.PublicKey()
	cases := map[string][]PublicKey{
		"empty":          nil,
		"no kid":         {{Algorithm: EdDSA, Key: pk.Key}},
		"long kid":       {{KeyID: strings.Repeat("k", maxKeyIDLength+1), Algorithm: EdDSA, Key: pk.Key}},
		"HS256":          {{KeyID: "x", Algorithm: "HS256", Key: pk.Key}},
		"private key":    {{KeyID: "x", Algorithm: EdDSA, Key: k.ed.Signer}},
		"wrong type":     {{KeyID: "x", Algorithm: RS256, Key: pk.Key}},
		"nil key":        {{KeyID: "x", Algorithm: ES256, Key: (*ecdsa.PublicKey)(nil)}},
		"RSA 1024":       {{KeyID: "x", Algorithm: RS256, Key: k.rs1024.Public()}},
		"duplicate kids": {pk, pk},
		"too many": func() []PublicKey {
			out := make([]PublicKey, maxKeys+1)
			for i := range out {
				out[i] = PublicKey{KeyID: fmt.Sprint(i), Algorithm: EdDSA, Key: pk.Key}
			}
			return out
		}(),
	}
	for name, keys := range cases {
		if _, err := NewKeySet(keys...); err == nil {
			t.Errorf("%s: NewKeySet succeeded", name)
		}
	}
}

func TestVerifierConfigRefuses(t *testing.T) {
	mods := map[string]func(*Config){
		"no keys":             func(c *Config) { c.Keys = nil },
		"no audiences":        func(c *Config) { c.Audiences = nil },
		"empty audience":      func(c *Config) { c.Audiences = []string{""} },
		"no type":             func(c *Config) { c.Type = "" },
		"negative leeway":     func(c *Config) { c.Leeway = -1 },
		"huge leeway":         func(c *Config) { c.Leeway = MaxLeeway + 1 },
		"no max lifetime":     func(c *Config) { c.MaxLifetime = 0 },
		"negative max size":   func(c *Config) { c.MaxSize = -1 },
		"sub-second max life": func(c *Config) { c.MaxLifetime = 500 * 1e6 },
	}
	for name, mod := range mods {
		cfg, _ := testConfig(t)
		mod(&cfg)
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
}

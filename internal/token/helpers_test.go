package token

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	fakeclock "k8s.io/utils/clock/testing"
)

const (
	testIssuer   = "https://camfleet.example/policies/default/home"
	testAudience = "camfleet"
	testLeeway   = 30 * time.Second
	testMaxLife  = 24 * time.Hour
)

// testNow is the fake clock's time in every test.
var testNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

var b64 = base64.RawURLEncoding

// testKeys are generated once per test binary: RSA generation is slow on a Pi.
type testKeys struct {
	ed, es, rs SigningKey
	rs1024     *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(tb testing.TB) testKeys {
	keysOnce.Do(func() {
		var err error
		must := func(k SigningKey, e error) SigningKey {
			if e != nil {
				err = e
			}
			return k
		}
		keys.ed = must(GenerateSigningKey(EdDSA))
		keys.es = must(GenerateSigningKey(ES256))
		rk, e := rsa.GenerateKey(rand.Reader, 2048)
		if e != nil {
			err = e
		}
		kid, e := Thumbprint(rk.Public())
		if e != nil {
			err = e
		}
		keys.rs = SigningKey{KeyID: kid, Algorithm: RS256, Signer: rk}
		//nolint:gosec // deliberately weak key for the "RSA under 2048 bits" test
		keys.rs1024, e = rsa.GenerateKey(rand.Reader, 1024)
		if e != nil {
			err = e
		}
		if err != nil {
			panic(fmt.Sprintf("generate test keys: %v", err))
		}
	})
	return keys
}

// testKeySet binds the three test keys to testIssuer.
func testKeySet(tb testing.TB) *KeySet {
	tb.Helper()
	k := getKeys(tb)
	ks, err := NewKeySet(k.ed.PublicKey(), k.es.PublicKey(), k.rs.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	ks, err = ks.BindIssuer(testIssuer)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

func testConfig(tb testing.TB) (Config, *fakeclock.FakePassiveClock) {
	clk := fakeclock.NewFakePassiveClock(testNow)
	return Config{
		Keys:        testKeySet(tb),
		Audiences:   []string{testAudience, "other-audience"},
		Type:        TypeAccess,
		Leeway:      testLeeway,
		MaxLifetime: testMaxLife,
		Revoked:     NewRevocations("revoked-id"),
		Clock:       clk,
	}, clk
}

func newTestVerifier(tb testing.TB) (*Verifier, *fakeclock.FakePassiveClock) {
	tb.Helper()
	cfg, clk := testConfig(tb)
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v, clk
}

// claimSet is a payload as raw JSON member values, so that tests can write
// any type into any claim.
type claimSet map[string]string

func validClaims() claimSet {
	return claimSet{
		"iss":   q(testIssuer),
		"sub":   q("alice"),
		"aud":   q(testAudience),
		"exp":   num(testNow.Add(time.Hour)),
		"iat":   num(testNow.Add(-time.Minute)),
		"nbf":   num(testNow.Add(-time.Minute)),
		"jti":   q("token-1"),
		"perms": `["camera:stream,snapshot:cams/*","events:read"]`,
	}
}

func (c claimSet) with(kv ...string) claimSet {
	out := claimSet{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (c claimSet) without(names ...string) claimSet {
	out := c.with()
	for _, n := range names {
		delete(out, n)
	}
	return out
}

func (c claimSet) json() string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = q(n) + ":" + c[n]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func q(s string) string { return fmt.Sprintf("%q", s) }

func num(t time.Time) string { return fmt.Sprint(t.Unix()) }

func hdr(alg Algorithm, kid, typ string) string {
	return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":%q}`, alg, kid, typ)
}

// forge signs arbitrary header and payload JSON with k.
func forge(tb testing.TB, k SigningKey, header, payload string) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	sig, err := signInput(k, []byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// validToken is a token every check accepts, signed with k.
func validToken(tb testing.TB, k SigningKey) string {
	return forge(tb, k, hdr(k.Algorithm, k.KeyID, TypeAccess), validClaims().json())
}

func segments(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}

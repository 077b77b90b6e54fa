package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

func fakeClock(t time.Time) *clocktesting.FakeClock { return clocktesting.NewFakeClock(t) }

func TestEncodeDecodeRoundTrip(t *testing.T) {
	set := &Set{RotateRequest: "r1"}
	for _, alg := range []camv1.SigningAlgorithm{camv1.AlgorithmEdDSA, camv1.AlgorithmES256, camv1.AlgorithmRS256} {
		k, err := Generate(alg, 2048, rand.Reader, t0)
		if err != nil {
			t.Fatal(err)
		}
		set.AddPending(k, params(), t0)
	}
	set.Keys[0].State, set.Keys[0].Published = camv1.KeyActive, t0
	k, err := Generate(camv1.AlgorithmEdDSA, 0, rand.Reader, t0)
	if err != nil {
		t.Fatal(err)
	}
	set.AddRequested(k, t0)
	data, err := set.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := set.Encode()
	if !maps.EqualFunc(data, again, bytes.Equal) {
		t.Fatal("encoding the same set twice gives different bytes; every reconcile would write")
	}
	got, problems := Decode(data, t0)
	if len(problems) != 0 || got.RotateRequest != "r1" || len(got.Keys) != len(set.Keys) {
		t.Fatalf("round trip: %v problems, %d keys", problems, len(got.Keys))
	}
	for i, k := range got.Keys {
		w := set.Keys[i]
		if k.ID != w.ID || k.State != w.State || !k.Published.Equal(w.Published) || !k.Activates.Equal(w.Activates) || k.Algorithm != w.Algorithm || k.Requested != w.Requested {
			t.Errorf("key %d: %+v, want %+v", i, k, w)
		}
	}
	if bytes.Contains(data[metadataKey], []byte("PRIVATE")) {
		t.Error("the lifecycle record holds key material")
	}
}

func TestDecodeDamage(t *testing.T) {
	good, _ := Generate(camv1.AlgorithmEdDSA, 0, rand.Reader, t0)
	set := &Set{}
	set.AddActive(good, false, t0)
	base, _ := set.Encode()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	pemOf := func(k any) []byte {
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	withKey := func(d map[string][]byte, kid string, alg string, pemBytes []byte) map[string][]byte {
		var rec record
		_ = json.Unmarshal(d[metadataKey], &rec)
		rec.Keys = append(rec.Keys, keyMetadata{ID: kid, Algorithm: camv1.SigningAlgorithm(alg), State: camv1.KeyRetiring, Created: t0})
		d[metadataKey], _ = json.Marshal(rec)
		d[kid+".pem"] = pemBytes
		return d
	}
	p384kid, _ := Thumbprint(p384.Public())
	weakKID, _ := Thumbprint(weak.Public())
	cases := []struct {
		name   string
		damage func(d map[string][]byte) map[string][]byte
		reason string
		words  string
		keep   int
	}{
		{"record missing", func(d map[string][]byte) map[string][]byte { delete(d, metadataKey); return d }, "KeyMetadataMissing", "no keys.json", 1},
		{"record not JSON", func(d map[string][]byte) map[string][]byte { d[metadataKey] = []byte("{"); return d }, "KeyMetadataCorrupt", "not a valid key record", 1},
		{"pem missing", func(d map[string][]byte) map[string][]byte { delete(d, good.ID+".pem"); return d }, "KeyInvalid", "private key is missing", 0},
		{"pem garbage", func(d map[string][]byte) map[string][]byte { d[good.ID+".pem"] = []byte("garbage"); return d }, "KeyInvalid", "not a PKCS#8 PEM block", 0},
		{"pem body corrupt", func(d map[string][]byte) map[string][]byte {
			d[good.ID+".pem"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01}})
			return d
		}, "KeyInvalid", "does not parse", 0},
		{"weak RSA", func(d map[string][]byte) map[string][]byte { return withKey(d, weakKID, "RS256", pemOf(weak)) }, "KeyInvalid", "RSA key of 1024 bits", 1},
		{"wrong curve", func(d map[string][]byte) map[string][]byte { return withKey(d, p384kid, "ES256", pemOf(p384)) }, "KeyInvalid", "curve P-384", 1},
		{"algorithm mismatch", func(d map[string][]byte) map[string][]byte {
			d[metadataKey] = []byte(strings.Replace(string(d[metadataKey]), `"alg":"EdDSA"`, `"alg":"RS256"`, 1))
			return d
		}, "KeyInvalid", "recorded as RS256 but the key is for EdDSA", 0},
		{"unknown state", func(d map[string][]byte) map[string][]byte {
			d[metadataKey] = []byte(strings.Replace(string(d[metadataKey]), `"state":"Active"`, `"state":"Signing"`, 1))
			return d
		}, "KeyInvalid", `unknown state "Signing"`, 0},
		{"unlisted garbage", func(d map[string][]byte) map[string][]byte { d["x.pem"] = []byte("junk"); return d }, "KeyUnlisted", "no lifecycle record and is dropped", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.damage(maps.Clone(base))
			got, problems := Decode(d, t0.Add(time.Hour))
			if len(problems) == 0 || problems[0].Reason != tc.reason || !strings.Contains(problems[0].Message, tc.words) {
				t.Fatalf("problems %+v, want %s saying %q", problems, tc.reason, tc.words)
			}
			if len(got.Keys) != tc.keep {
				t.Fatalf("kept %d keys, want %d", len(got.Keys), tc.keep)
			}
			for _, p := range problems {
				if strings.Contains(p.Message, "PRIVATE") || strings.Contains(p.Message, string(base[good.ID+".pem"][28:50])) {
					t.Fatalf("key material in a problem message: %s", p.Message)
				}
			}
		})
	}
}

// TestJWKSIsWhatTheVerifierReads: the published JWKS parses with the agents' verifier, its
// kids are the keys' thumbprints, and a token signed by the active key verifies with it.
func TestJWKSIsWhatTheVerifierReads(t *testing.T) {
	set := &Set{}
	for i, alg := range []camv1.SigningAlgorithm{camv1.AlgorithmEdDSA, camv1.AlgorithmES256, camv1.AlgorithmRS256} {
		k, err := Generate(alg, 2048, rand.Reader, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		set.Add(k)
	}
	raw, err := set.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.ParseJWKS(raw)
	if err != nil {
		t.Fatalf("the verifier refuses our JWKS: %v\n%s", err, raw)
	}
	for _, k := range set.Keys {
		pk, ok := ks.Lookup(k.ID)
		if !ok || string(pk.Algorithm) != string(k.Algorithm) {
			t.Fatalf("key %s missing or with the wrong algorithm", k.ID)
		}
		signer := token.SigningKey{KeyID: k.ID, Algorithm: token.Algorithm(k.Algorithm), Signer: k.Signer()}
		tok, err := token.Sign(token.Claims{Issuer: "https://i", Subject: "s", Audience: []string{"a"}, IssuedAt: t0, Expiry: t0.Add(time.Minute)}, "at+jwt", signer)
		if err != nil {
			t.Fatal(err)
		}
		bound, _ := ks.BindIssuer("https://i")
		v, err := token.NewVerifier(token.Config{Keys: bound, Audiences: []string{"a"}, Type: "at+jwt", MaxLifetime: time.Hour, Clock: fakeClock(t0)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("%s: a token signed by a stored key does not verify with the published JWKS: %v", k.Algorithm, err)
		}
	}
	if empty, _ := (&Set{}).JWKS(); string(empty) != `{"keys":[]}` {
		t.Fatalf("empty set renders %s", empty)
	}
}

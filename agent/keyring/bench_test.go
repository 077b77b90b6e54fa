package keyring

import (
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

// BenchmarkKeyReload is what every agent does when a policy's status changes (a rotation, a
// revoked ID): parse the published JWKS and revocation list and swap the verifier in. The
// policy is a realistic one mid-rotation: three EdDSA keys (retiring, active, pending), 64
// revoked IDs, one external issuer. Compare runs with benchstat.
func BenchmarkKeyReload(b *testing.B) {
	var keys []token.SigningKey
	for range 3 {
		k, err := token.GenerateSigningKey(token.EdDSA)
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, k)
	}
	ext, err := token.GenerateSigningKey(token.ES256)
	if err != nil {
		b.Fatal(err)
	}
	revoked := make([]string, 64)
	for i := range revoked {
		revoked[i] = fmt.Sprintf("jti-%04d", i)
	}
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = key.Namespace, key.Name
	p.Spec.Audience = []string{"camfleet"}
	p.Status.Issuer = iss
	p.Status.Verification = &camv1.VerificationStatus{JWKS: jwks(b, keys...), RevokedTokenIDs: revoked,
		ExternalIssuers: []camv1.ExternalIssuerStatus{{Issuer: "https://ha.example", Audience: "camfleet", SubjectClaim: "sub", Roles: []string{"viewer"}, JWKS: jwks(b, ext)}}}
	kr := New(clocktesting.NewFakeClock(time.Now()))
	b.ReportAllocs()
	version := 0
	for b.Loop() {
		// A newly revoked token ID each time, as a real revocation brings: nothing to reuse.
		version++
		p.ResourceVersion = fmt.Sprint(version)
		revoked[0] = fmt.Sprintf("jti-new-%d", version)
		if err := kr.Update(p); err != nil {
			b.Fatal(err)
		}
	}
	if loaded, _, ok := kr.Keys(key); !ok || len(loaded) != 3 {
		b.Fatalf("loaded %v", loaded)
	}
}

// BenchmarkKeyReloadUnchanged is the common case of a policy status update: only the agents'
// count moved, and the keyring keeps its verifier.
func BenchmarkKeyReloadUnchanged(b *testing.B) {
	k, err := token.GenerateSigningKey(token.EdDSA)
	if err != nil {
		b.Fatal(err)
	}
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = key.Namespace, key.Name
	p.Spec.Audience = []string{"camfleet"}
	p.Status.Issuer = iss
	p.Status.Verification = &camv1.VerificationStatus{JWKS: jwks(b, k)}
	kr := New(clocktesting.NewFakeClock(time.Now()))
	if err := kr.Update(p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		p.Status.Agents = fmt.Sprintf("%d/1000", n%1000)
		if err := kr.Update(p); err != nil {
			b.Fatal(err)
		}
	}
}

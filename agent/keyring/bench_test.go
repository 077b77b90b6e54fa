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
		// A new resourceVersion each time, as a real status update carries: nothing cached.
		version++
		p.ResourceVersion = fmt.Sprint(version)
		if err := kr.Update(p); err != nil {
			b.Fatal(err)
		}
	}
	if loaded, _, ok := kr.Keys(key); !ok || len(loaded) != 3 {
		b.Fatalf("loaded %v", loaded)
	}
}

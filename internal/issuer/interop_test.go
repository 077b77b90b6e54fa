package issuer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// node runs a script with the npm "jose" package (installed by hack/jose.sh) and returns its
// stdout.
func node(t *testing.T, script string, args ...string) string {
	t.Helper()
	modules, err := exec.Command(filepath.Join(env.RepoRoot, "hack", "jose.sh")).Output()
	if err != nil {
		t.Fatalf("hack/jose.sh: %v", err)
	}
	file := filepath.Join(t.TempDir(), "script.cjs")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{file}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+strings.TrimSpace(string(modules)))
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// joseVerify fetches the policy's discovery document and JWKS over HTTP, as any OpenID
// client does, and verifies the token with them.
const joseVerify = `
const jose = require('jose');
(async () => {
  const [base, token] = process.argv.slice(2);
  const disc = await (await fetch(base + '/.well-known/openid-configuration')).json();
  const jwks = jose.createRemoteJWKSet(new URL(disc.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: disc.issuer, audience: 'camfleet', typ: 'at+jwt', algorithms: ['EdDSA', 'ES256', 'RS256'],
  });
  console.log(JSON.stringify({ sub: payload.sub, alg: protectedHeader.alg }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestJoseVerifiesOurTokens: tokens of all three algorithms verify with an independent
// implementation using only what the service publishes.
func TestJoseVerifiesOurTokens(t *testing.T) {
	for _, alg := range []camv1.SigningAlgorithm{camv1.AlgorithmEdDSA, camv1.AlgorithmES256, camv1.AlgorithmRS256} {
		t.Run(string(alg), func(t *testing.T) {
			s := newServiceWith(t, bcrypt.MinCost, false, func(p *camv1.TokenPolicy) { p.Spec.Algorithm = alg })
			rep := s.login("alice", alicePass)
			if rep.status != http.StatusOK {
				t.Fatalf("login: %d %s", rep.status, rep.raw)
			}
			out := node(t, joseVerify, s.url+"/policies/"+s.ns+"/home", str(rep.body["access_token"]))
			if out != `{"sub":"alice","alg":"`+string(alg)+`"}` {
				t.Fatalf("jose says %s", out)
			}
		})
	}
}

// joseSign makes a key pair, signs a token as a home-automation server would, and prints the
// public key (PEM), the token, and a token with the same key claiming another issuer.
const joseSign = `
const jose = require('jose');
(async () => {
  const [alg, issuer, other] = process.argv.slice(2);
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { modulusLength: 2048, crv: 'Ed25519' });
  const jwk = await jose.exportJWK(publicKey);
  const kid = await jose.calculateJwkThumbprint(jwk);
  const sign = (iss) => new jose.SignJWT({ email: 'dashboard@home.example' })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(iss).setAudience('camfleet').setSubject('ha-1').setIssuedAt().setExpirationTime('10m')
    .sign(privateKey);
  const jwks = { keys: [{ ...jwk, kid, alg, use: 'sig' }] };
  console.log(JSON.stringify({ pem: await jose.exportSPKI(publicKey), jwks, token: await sign(issuer), forged: await sign(other) }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestTrustedIssuerSignedByJose: a token that jose signs with a key the policy trusts (an
// external issuer, the dashboard seed's case) passes the same strict verifier, gets the
// subject from the configured claim and the roles the policy gives that issuer; the same
// token under an issuer the policy does not trust is refused.
func TestTrustedIssuerSignedByJose(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			s := newServiceWith(t, bcrypt.MinCost, false, nil)
			var out struct {
				PEM, Token, Forged string
				JWKS               json.RawMessage
			}
			if err := json.Unmarshal([]byte(node(t, joseSign, alg, "https://ha.home.example", s.url+"/policies/"+s.ns+"/home")), &out); err != nil {
				t.Fatal(err)
			}
			userinfo := func() reply {
				return s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+out.Token)
			}
			if r := userinfo(); r.status != http.StatusUnauthorized {
				t.Fatalf("an untrusted issuer's token: %d %s", r.status, r.raw)
			}
			ctx := context.Background()
			var p camv1.TokenPolicy
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: "home"}, &p); err != nil {
				t.Fatal(err)
			}
			ext := camv1.ExternalIssuer{Issuer: "https://ha.home.example", PublicKeys: []string{out.PEM}, SubjectClaim: "email", Roles: []string{"viewer"}}
			if alg == "ES256" {
				// This issuer's keys come from a JWKS in a ConfigMap instead.
				cm := &corev1.ConfigMap{Data: map[string]string{"jwks.json": string(out.JWKS)}}
				cm.Name, cm.Namespace = "ha-jwks", s.ns
				if err := env.Client.Create(ctx, cm); err != nil {
					t.Fatal(err)
				}
				ext.PublicKeys, ext.JWKSConfigMapRef = nil, &camv1.ConfigMapKeyReference{Name: "ha-jwks", Key: "jwks.json"}
			}
			p.Spec.ExternalIssuers = []camv1.ExternalIssuer{ext}
			if err := env.Client.Update(ctx, &p); err != nil {
				t.Fatal(err)
			}
			// The token service trusts the keys the controller resolved and published.
			s.reconcile()
			r := userinfo()
			if r.status != http.StatusOK || r.body["sub"] != "dashboard@home.example" || r.body["iss"] != "https://ha.home.example" ||
				strings.Join(toStrings(r.body["perms"]), ",") != "camera:stream,snapshot:*" {
				t.Fatalf("trusted issuer's token: %d %s", r.status, r.raw)
			}
			// The external key cannot speak for our own issuer: keys are bound to their issuer.
			if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+out.Forged); r.status != http.StatusUnauthorized {
				t.Fatalf("an external key signed a token claiming our issuer, and it passed: %d %s", r.status, r.raw)
			}
		})
	}
}

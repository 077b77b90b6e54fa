package issuer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/issuer"
	"github.com/camfleet/camfleet/internal/token"
)

// apiRequests counts the HTTP requests a rest.Config's clients send to the API server.
type apiRequests struct {
	mu   sync.Mutex
	sent []string
}

func (a *apiRequests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		a.mu.Lock()
		a.sent = append(a.sent, r.Method+" "+r.URL.Path)
		a.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// since is every request sent after the first n.
func (a *apiRequests) since(n int) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.sent[n:]...)
}

func (a *apiRequests) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sent)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// externalJWKS is a JWKS of one new ES256 key, and the key.
func externalJWKS(t *testing.T) (string, token.SigningKey) {
	t.Helper()
	k, err := token.GenerateSigningKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	set, err := token.NewKeySet(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := set.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return string(raw), k
}

// TestUnauthenticatedRequestsReadNothingFromTheAPIServer: once its caches are warm, the token
// service as the chart runs it (its own manager and caches, as cmd/camfleet-token-service
// wires them) answers the JWKS, discovery, failed logins, refused refresh tokens and refused
// UserInfo tokens without a single API request and without building a verifier, even for a
// policy trusting an external issuer whose JWKS is in a ConfigMap; and a rotation of the
// policy's keys, or of the external issuer's, is served as soon as the controller publishes
// it. Security review finding: every jwks.json read the external issuers' ConfigMaps from the
// API server, and every login and refresh parsed every key set.
func TestUnauthenticatedRequestsReadNothingFromTheAPIServer(t *testing.T) {
	const extIssuer = "https://ha.home.example"
	extJWKS, extKey := externalJWKS(t)
	s := newServiceWith(t, bcrypt.MinCost, false, func(p *camv1.TokenPolicy) {
		cm := &corev1.ConfigMap{Data: map[string]string{"jwks.json": extJWKS}}
		cm.Name, cm.Namespace = "ha-jwks", p.Namespace
		if err := env.Client.Create(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
		p.Spec.ExternalIssuers = []camv1.ExternalIssuer{{Issuer: extIssuer, Roles: []string{"viewer"},
			JWKSConfigMapRef: &camv1.ConfigMapKeyReference{Name: "ha-jwks", Key: "jwks.json"}}}
	})

	var reads apiRequests
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = reads.wrap
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: issuer.CacheOptions([]string{s.ns}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.New(mgr, issuer.Options{ServiceURL: s.url, Namespaces: []string{s.ns}, Clock: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	srv.Log = s.srv.Log
	s.srv, s.handler = srv, srv.Handler()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	// Warm-up: the caches sync (a login succeeds once they have) and each verifier is built.
	var login reply
	await(t, "a login through the synced caches", func() bool { login = s.login("alice", alicePass); return login.status == http.StatusOK })
	access, refresh := str(login.body["access_token"]), str(login.body["refresh_token"])
	now := s.clock.Now()
	extToken, err := token.Sign(token.Claims{Issuer: extIssuer, Subject: "dashboard", Audience: []string{"camfleet"}, IssuedAt: now, Expiry: now.Add(time.Hour)}, "JWT", extKey)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+extToken); r.status != http.StatusOK || r.body["sub"] != "dashboard" {
		t.Fatalf("the external issuer's token at userinfo: %d %s", r.status, r.raw)
	}
	if r := s.refresh(access); r.status != http.StatusUnauthorized {
		t.Fatalf("an access token as a refresh token: %d %s", r.status, r.raw)
	}

	before, builds := reads.count(), issuer.VerifierBuilds(srv)
	const n = 10
	for i := range n {
		if r := s.do(http.MethodGet, s.path("jwks.json"), ""); r.status != http.StatusOK {
			t.Fatalf("jwks.json: %d %s", r.status, r.raw)
		}
		if r := s.do(http.MethodGet, s.path(".well-known/openid-configuration"), ""); r.status != http.StatusOK {
			t.Fatalf("discovery: %d %s", r.status, r.raw)
		}
		// A wrong password, another user's, and a user that does not exist.
		user := []string{"alice", "bob", fmt.Sprintf("nobody-%d", i)}[i%3]
		if r := s.login(user, "wrong-password"); r.status != http.StatusUnauthorized {
			t.Fatalf("login of %s with a wrong password: %d %s", user, r.status, r.raw)
		}
		if r := s.refresh(access); r.status != http.StatusUnauthorized {
			t.Fatalf("an access token as a refresh token: %d %s", r.status, r.raw)
		}
		if r := s.refresh("not.a.token"); r.status != http.StatusUnauthorized {
			t.Fatalf("a malformed refresh token: %d %s", r.status, r.raw)
		}
		if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+refresh); r.status != http.StatusUnauthorized {
			t.Fatalf("a refresh token at userinfo: %d %s", r.status, r.raw)
		}
		// Within the failed-login limits, so every login above is evaluated, not refused early.
		s.clock.Step(15 * time.Second)
	}
	if sent := reads.since(before); len(sent) != 0 {
		t.Errorf("%d unauthenticated requests sent %d API requests, want none:\n%s", 6*n, len(sent), strings.Join(sent, "\n"))
	}
	if got := issuer.VerifierBuilds(srv) - builds; got != 0 {
		t.Errorf("%d unauthenticated requests built %d verifiers, want none: the policy did not change", 6*n, got)
	}

	// An emergency rotation that revokes the old key: once the controller publishes it, the
	// JWKS served holds the new key and not the old, and tokens of the new key verify.
	oldJWKS := s.do(http.MethodGet, s.path("jwks.json"), "").raw
	var p camv1.TokenPolicy
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "home"}, &p); err != nil {
		t.Fatal(err)
	}
	p.Annotations = map[string]string{camv1.AnnotationRotate: "1", camv1.AnnotationRotateRevoke: "true"}
	if err := env.Client.Update(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	s.reconcile()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(&p), &p); err != nil {
		t.Fatal(err)
	}
	published := p.Status.Verification.JWKS
	if published == oldJWKS {
		t.Fatal("the rotation published no new JWKS")
	}
	await(t, "jwks.json serving the rotated keys", func() bool { return s.do(http.MethodGet, s.path("jwks.json"), "").raw == published })
	login = s.login("bob", bobPass)
	if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+str(login.body["access_token"])); r.status != http.StatusOK {
		t.Fatalf("a token of the new key at userinfo: %d %s (login %d %s)", r.status, r.raw, login.status, login.raw)
	}
	if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+access); r.status != http.StatusUnauthorized {
		t.Fatalf("a token of the revoked key at userinfo: %d %s", r.status, r.raw)
	}

	// The external issuer rotates its key in its ConfigMap: once the controller publishes
	// it, its new tokens verify and its old ones no longer do.
	newJWKS, newKey := externalJWKS(t)
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "ha-jwks"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["jwks.json"] = newJWKS
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	s.reconcile()
	newToken, err := token.Sign(token.Claims{Issuer: extIssuer, Subject: "dashboard", Audience: []string{"camfleet"}, IssuedAt: now, Expiry: now.Add(time.Hour)}, "JWT", newKey)
	if err != nil {
		t.Fatal(err)
	}
	await(t, "userinfo accepting the external issuer's new key", func() bool {
		return s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+newToken).status == http.StatusOK
	})
	if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+extToken); r.status != http.StatusUnauthorized {
		t.Fatalf("a token of the external issuer's old key: %d %s", r.status, r.raw)
	}
}

// await polls cond until it holds, failing the test after ten seconds.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

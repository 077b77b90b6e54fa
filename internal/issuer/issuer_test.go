package issuer_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/controllers"
	"github.com/camfleet/camfleet/internal/issuer"
	"github.com/camfleet/camfleet/internal/testenv"
	"github.com/camfleet/camfleet/internal/testkit"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const (
	alicePass = "wonderland-2026"
	bobPass   = "can-we-fix-it"
)

// service is a token service in front of a settled policy "home" in a fresh namespace.
type service struct {
	t     *testing.T
	ns    string
	url   string
	clock *clocktesting.FakeClock
	logs  *testkit.LogBuffer
	srv   *issuer.Server
	// handler serves s.url: s.srv's, unless a test puts another Server there before it
	// sends its first request.
	handler http.Handler
}

func newService(t *testing.T, cost int, withDefault bool) *service {
	t.Helper()
	return newServiceWith(t, cost, withDefault, nil)
}

func newServiceWith(t *testing.T, cost int, withDefault bool, mutate func(*camv1.TokenPolicy)) *service {
	t.Helper()
	ctx := context.Background()
	s := &service{t: t, ns: env.Namespace(t), clock: clocktesting.NewFakeClock(time.Now().Truncate(time.Second)), logs: &testkit.LogBuffer{}}
	users := &corev1.Secret{Data: map[string][]byte{}}
	users.Name, users.Namespace = "users", s.ns
	users.Labels = map[string]string{camv1.LabelPassword: "true"}
	for u, p := range map[string]string{"alice": alicePass, "bob": bobPass} {
		h, err := bcrypt.GenerateFromPassword([]byte(p), cost)
		if err != nil {
			t.Fatal(err)
		}
		users.Data[u] = h
	}
	if err := env.Client.Create(ctx, users); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Roles: []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:stream,snapshot:*"}}, {Name: "admin", Permissions: []camv1.Permission{"*"}}},
		Users: []camv1.User{
			{Name: "alice", Roles: []string{"admin"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "alice"}},
			{Name: "bob", Roles: []string{"viewer"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "bob"}},
		},
	}}
	p.Name, p.Namespace = "home", s.ns
	if mutate != nil {
		mutate(p)
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	s.reconcile()
	s.srv = &issuer.Server{Client: env.Client, APIReader: env.Client, Clock: s.clock, ServiceURL: ts.URL, Log: s.logs.Logger(), Rejections: issuer.NewRejectionsMetric()}
	if withDefault {
		s.srv.DefaultPolicy = types.NamespacedName{Namespace: s.ns, Name: "home"}
	}
	s.handler = s.srv.Handler()
	return s
}

// reconcile runs the TokenPolicy controller over the policy until it is settled, as the
// controller does after every change: the token service serves what it publishes.
func (s *service) reconcile() {
	s.t.Helper()
	r := &controllers.TokenPolicyReconciler{Client: env.Client, Clock: s.clock, TokenServiceURL: s.url}
	for range 3 {
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: s.ns, Name: "home"}}); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *service) path(rest string) string { return s.url + "/policies/" + s.ns + "/home/" + rest }

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (s *service) do(method, url, body string, header ...string) reply {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	rep := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &rep.body)
	return rep
}

func (s *service) login(user, pass string) reply {
	s.t.Helper()
	b, _ := json.Marshal(map[string]string{"user": user, "pass": pass})
	return s.do(http.MethodPost, s.path("login"), string(b))
}

func str(v any) string { s, _ := v.(string); return s }

// TestLoginServesStandardTokens: a login answers with the phone app's "token" and the
// OAuth-style fields; the access token's permissions come from the user's roles; JWKS and
// discovery let an independent library (jwx) verify it.
func TestLoginServesStandardTokens(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	rep := s.login("alice", alicePass)
	if rep.status != http.StatusOK {
		t.Fatalf("login: %d %s", rep.status, rep.raw)
	}
	at, rt := str(rep.body["access_token"]), str(rep.body["refresh_token"])
	if at == "" || rt == "" || str(rep.body["token"]) != at || rep.body["token_type"] != "Bearer" || rep.body["expires_in"] != float64(900) {
		t.Fatalf("login answer %s", rep.raw)
	}
	if rep.header.Get("Cache-Control") != "no-store" {
		t.Errorf("tokens served without Cache-Control: no-store")
	}
	info := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+at)
	if info.status != http.StatusOK || info.body["sub"] != "alice" || strings.Join(toStrings(info.body["perms"]), ",") != "*" {
		t.Fatalf("userinfo: %d %s", info.status, info.raw)
	}
	bobs := s.login("bob", bobPass)
	info = s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+str(bobs.body["access_token"]))
	if strings.Join(toStrings(info.body["perms"]), ",") != "camera:stream,snapshot:*" {
		t.Fatalf("bob's permissions: %s", info.raw)
	}
	for _, bad := range []string{rt, at + "x", "", "not.a.token"} {
		if r := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+bad); r.status != http.StatusUnauthorized || r.raw != "{\"error\":\"unauthorized\"}\n" {
			t.Errorf("userinfo with a bad token: %d %s", r.status, r.raw)
		}
	}

	if n := testutil.ToFloat64(s.srv.Rejections.WithLabelValues("userinfo", "wrong_type")); n != 1 {
		t.Errorf("the refresh token at userinfo counted %v times as wrong_type, want 1", n)
	}
	if n := testutil.ToFloat64(s.srv.Rejections.WithLabelValues("userinfo", "malformed")); n != 2 {
		t.Errorf("the malformed tokens counted %v times, want 2", n)
	}
	disc := s.do(http.MethodGet, s.path(".well-known/openid-configuration"), "")
	if disc.status != http.StatusOK || disc.body["issuer"] != s.url+"/policies/"+s.ns+"/home" || disc.body["jwks_uri"] != s.path("jwks.json") {
		t.Fatalf("discovery: %s", disc.raw)
	}
	jwksRep := s.do(http.MethodGet, str(disc.body["jwks_uri"]), "")
	set, err := jwk.Parse([]byte(jwksRep.raw))
	if err != nil || set.Len() != 1 || jwksRep.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %v %s", err, jwksRep.raw)
	}
	payload, err := jws.Verify([]byte(at), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		t.Fatalf("jwx does not verify our access token with the served JWKS: %v", err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["iss"] != disc.body["issuer"] || claims["sub"] != "alice" || claims["jti"] == nil {
		t.Fatalf("claims %v", claims)
	}
	msg, _ := jws.Parse([]byte(at))
	if typ, _ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != "at+jwt" {
		t.Errorf("access token typ %q", typ)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	sort.Strings(out)
	return out
}

// TestFailedLoginsAnswerAlike: an unknown user and a wrong password get the same answer and
// cost the same bcrypt work (the medians of their durations stay within a factor of two; the
// bcrypt comparison dominates both).
func TestFailedLoginsAnswerAlike(t *testing.T) {
	s := newService(t, bcrypt.DefaultCost, false)
	unknown, wrong := s.login("mallory", "x"), s.login("alice", "x")
	if unknown.status != http.StatusUnauthorized || unknown.raw != wrong.raw || unknown.status != wrong.status {
		t.Fatalf("unknown user: %d %s; wrong password: %d %s", unknown.status, unknown.raw, wrong.status, wrong.raw)
	}
	// Interleaved, so a busy machine slows both kinds alike; medians, so one stall does not count.
	var unknowns, wrongs []time.Duration
	timed := func(user, pass string) time.Duration {
		s.clock.Step(time.Minute) // stay under the rate limit
		start := time.Now()
		s.login(user, pass)
		return time.Since(start)
	}
	for i := range 7 {
		unknowns = append(unknowns, timed("nobody", "wrong-"+string(rune('a'+i))))
		wrongs = append(wrongs, timed("alice", "wrong-"+string(rune('a'+i))))
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	u, w := median(unknowns), median(wrongs)
	if ratio := float64(u) / float64(w); ratio < 0.5 || ratio > 2 {
		t.Fatalf("unknown user takes %s, wrong password %s: a timing oracle", u, w)
	}
}

// TestFailedLoginsAreRateLimited: per user and per client address, with Retry-After.
func TestFailedLoginsAreRateLimited(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	for i := range 5 {
		if r := s.login("alice", "guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	r := s.login("alice", alicePass)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "12" || !strings.Contains(r.raw, "too many failed logins") {
		t.Fatalf("6th attempt: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	if r := s.login("bob", bobPass); r.status != http.StatusOK {
		t.Fatalf("another user is not limited by alice's failures: %d", r.status)
	}
	s.clock.Step(12 * time.Second)
	if r := s.login("alice", alicePass); r.status != http.StatusOK {
		t.Fatalf("after Retry-After: %d %s", r.status, r.raw)
	}
	// One address guessing across many users is limited too.
	s.clock.Step(time.Hour)
	for i := range 20 {
		s.login("user"+string(rune('a'+i)), "guess")
	}
	if r := s.login("bob", bobPass); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("address limit: %d %s", r.status, r.raw)
	}
}

// TestBadRequestsGetClearErrors: malformed, oversized, incomplete requests and unknown
// policies get 4xx JSON errors that say what is wrong.
func TestBadRequestsGetClearErrors(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	cases := []struct {
		name, method, url, body string
		status                  int
		words                   string
	}{
		{"malformed JSON", "POST", s.path("login"), `{"user":`, 400, "not a JSON object"},
		{"not an object", "POST", s.path("login"), `["alice"]`, 400, "not a JSON object"},
		{"oversized body", "POST", s.path("login"), `{"user":"alice","pass":"` + strings.Repeat("a", 5000) + `"}`, 413, "larger than 4096 bytes"},
		{"missing pass", "POST", s.path("login"), `{"user":"alice"}`, 400, "missing user or pass"},
		{"missing user", "POST", s.path("login"), `{"pass":"x"}`, 400, "missing user or pass"},
		{"missing refresh token", "POST", s.path("refresh"), `{}`, 400, "missing refresh_token"},
		{"unknown policy", "POST", s.url + "/policies/" + s.ns + "/nope/login", `{"user":"a","pass":"b"}`, 404, "unknown token policy"},
		{"unknown namespace", "GET", s.url + "/policies/nowhere/home/jwks.json", ``, 404, "unknown token policy"},
		{"no default policy", "POST", s.url + "/api/login", `{"user":"a","pass":"b"}`, 404, "no default token policy"},
		{"unknown endpoint", "GET", s.url + "/admin", ``, 404, "no such endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(tc.method, tc.url, tc.body)
			if r.status != tc.status || !strings.Contains(str(r.body["error"]), tc.words) || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s, want %d with %q", r.status, r.raw, tc.status, tc.words)
			}
		})
	}
	if r := s.do("GET", s.path("login"), ""); r.status != http.StatusMethodNotAllowed || !strings.Contains(str(r.body["error"]), "method not allowed") {
		t.Errorf("GET login: %d", r.status)
	}
}

// TestDefaultPolicyAnswersTheSeedPaths: /api/login and /api/refresh, as the phone app calls.
func TestDefaultPolicyAnswersTheSeedPaths(t *testing.T) {
	s := newService(t, bcrypt.MinCost, true)
	r := s.do(http.MethodPost, s.url+"/api/login", `{"user":"bob","pass":"`+bobPass+`"}`)
	if r.status != http.StatusOK || str(r.body["token"]) == "" {
		t.Fatalf("/api/login: %d %s", r.status, r.raw)
	}
	r = s.do(http.MethodPost, s.url+"/api/refresh", `{"refresh_token":"`+str(r.body["refresh_token"])+`"}`)
	if r.status != http.StatusOK || str(r.body["access_token"]) == "" {
		t.Fatalf("/api/refresh: %d %s", r.status, r.raw)
	}
}

// TestRefreshRotatesAndDetectsReuse: a refresh token gives a new pair; using one twice
// revokes the whole family, including the newer refresh token; access tokens do not refresh.
func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	first := s.login("alice", alicePass)
	refresh := func(tok string) reply {
		return s.do(http.MethodPost, s.path("refresh"), `{"refresh_token":"`+tok+`"}`)
	}
	s.clock.Step(time.Minute)
	second := refresh(str(first.body["refresh_token"]))
	if second.status != http.StatusOK || str(second.body["refresh_token"]) == str(first.body["refresh_token"]) || str(second.body["access_token"]) == str(first.body["access_token"]) {
		t.Fatalf("refresh: %d %s", second.status, second.raw)
	}
	third := refresh(str(second.body["refresh_token"]))
	if third.status != http.StatusOK {
		t.Fatalf("second refresh: %d %s", third.status, third.raw)
	}
	if r := refresh(str(first.body["refresh_token"])); r.status != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %d %s", r.status, r.raw)
	}
	if r := refresh(str(third.body["refresh_token"])); r.status != http.StatusUnauthorized {
		t.Fatalf("after reuse the newest refresh token of the family must fail too: %d", r.status)
	}
	if r := refresh(str(third.body["access_token"])); r.status != http.StatusUnauthorized {
		t.Fatalf("an access token refreshed: %d", r.status)
	}
	// Another login starts a new family that still works.
	if r := refresh(str(s.login("alice", alicePass).body["refresh_token"])); r.status != http.StatusOK {
		t.Fatalf("a fresh family: %d %s", r.status, r.raw)
	}
	s.clock.Step(721 * time.Hour)
	if r := refresh(str(third.body["refresh_token"])); r.status != http.StatusUnauthorized {
		t.Fatalf("an expired refresh token: %d", r.status)
	}
}

// TestNoSecretsInLogs captures the service's logs over logins, failures, refreshes, reuse and
// userinfo, and searches them for every token, password and hash involved.
func TestNoSecretsInLogs(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	ok := s.login("alice", alicePass)
	s.login("alice", "wrong-password-123")
	s.login("eve", "eves-password-456")
	r1 := s.do(http.MethodPost, s.path("refresh"), `{"refresh_token":"`+str(ok.body["refresh_token"])+`"}`)
	s.do(http.MethodPost, s.path("refresh"), `{"refresh_token":"`+str(ok.body["refresh_token"])+`"}`)
	s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+str(r1.body["access_token"]))
	s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Bearer "+str(ok.body["refresh_token"]))
	var users corev1.Secret
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: "users"}, &users); err != nil {
		t.Fatal(err)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "Login failed") || !strings.Contains(logs, "Refresh token reused") {
		t.Fatalf("the logs do not record the events at all:\n%s", logs)
	}
	secrets := []string{alicePass, "wrong-password-123", "eves-password-456", string(users.Data["alice"])}
	for _, rep := range []reply{ok, r1} {
		for _, k := range []string{"access_token", "refresh_token"} {
			tok := str(rep.body[k])
			secrets = append(secrets, tok, strings.Split(tok, ".")[2])
		}
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logs, sec) {
			t.Fatalf("a secret reached the logs:\n%s", logs)
		}
	}
}

// TestSeedClientsUnchanged: raspiCamSrv's {"username","password"} logs in; its refresh (the
// refresh token as the Bearer token, no body) answers with a new access token; an access token
// presented that way is refused; the microdot {"user","pass"} answer still carries "token";
// userinfo reads the header with any case of the scheme and refuses other schemes.
func TestSeedClientsUnchanged(t *testing.T) {
	s := newService(t, bcrypt.MinCost, true)
	r := s.do(http.MethodPost, s.url+"/api/login", `{"username":"bob","password":"`+bobPass+`"}`)
	if r.status != http.StatusOK || str(r.body["access_token"]) == "" || str(r.body["token"]) != str(r.body["access_token"]) {
		t.Fatalf("raspiCamSrv login: %d %s", r.status, r.raw)
	}
	s.clock.Step(time.Minute)
	rt := str(r.body["refresh_token"])
	nr := s.do(http.MethodPost, s.url+"/api/refresh", "", "Authorization", "Bearer "+rt)
	if nr.status != http.StatusOK || str(nr.body["access_token"]) == "" || str(nr.body["access_token"]) == str(r.body["access_token"]) {
		t.Fatalf("refresh with the Bearer header: %d %s", nr.status, nr.raw)
	}
	if a := s.do(http.MethodPost, s.url+"/api/refresh", "", "Authorization", "Bearer "+str(nr.body["access_token"])); a.status != http.StatusUnauthorized {
		t.Errorf("an access token as the refresh Bearer token: %d %s", a.status, a.raw)
	}
	if a := s.do(http.MethodPost, s.url+"/api/refresh", "", "Authorization", "Basic Ym9iOnB3"); a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("a Basic header on refresh: %d %v", a.status, a.header)
	}
	m := s.do(http.MethodPost, s.url+"/api/login", `{"user":"bob","pass":"`+bobPass+`"}`)
	if m.status != http.StatusOK || str(m.body["token"]) == "" {
		t.Fatalf("microdot login: %d %s", m.status, m.raw)
	}
	at := str(m.body["token"])
	if u := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "bearer "+at); u.status != http.StatusOK || str(u.body["sub"]) != "bob" {
		t.Errorf("userinfo with a lower-case scheme: %d %s", u.status, u.raw)
	}
	if u := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", "Token "+at); u.status != http.StatusUnauthorized || !strings.Contains(u.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("userinfo with another scheme: %d %v", u.status, u.header)
	}
}

// TestConcurrentGuessesAreLimited: 60 wrong passwords for one user sent at once are charged
// before bcrypt runs, so no more than the burst of 5 are evaluated; the rest get 429.
// Security review finding (before the fix all 60 were evaluated).
func TestConcurrentGuessesAreLimited(t *testing.T) {
	s := newService(t, bcrypt.DefaultCost, false)
	const n = 60
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.login("alice", "guess").status
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[http.StatusUnauthorized] > 5 || counts[http.StatusTooManyRequests] < n-5 {
		t.Errorf("60 concurrent guesses: %v; want at most 5 evaluated (401) and the rest 429", counts)
	}
	// A success gives its reservation back: five logins in a row all pass.
	s.clock.Step(time.Hour)
	for i := range 8 {
		if r := s.login("bob", bobPass); r.status != http.StatusOK {
			t.Fatalf("successful login %d: %d", i, r.status)
		}
	}
}

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/camfleet/camfleet/agent/camera"
	"github.com/camfleet/camfleet/agent/capture"
	"github.com/camfleet/camfleet/agent/keyring"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
	"github.com/camfleet/camfleet/internal/token"
)

const issuer = "https://tokens.test/policies/cams/home"

var policyKey = types.NamespacedName{Namespace: "cams", Name: "home"}

// fixture is an API server over real HTTP with two cameras under one policy, and a key that
// signs tokens the keyring trusts.
type fixture struct {
	t      *testing.T
	clock  *clocktesting.FakeClock
	keys   *keyring.Keyring
	policy *camv1.TokenPolicy
	signer token.SigningKey
	cams   *cameras
	srv    *httptest.Server
	api    *Server
}

// cameras is a fixed set of running cameras.
type cameras struct {
	mu   sync.Mutex
	all  map[types.NamespacedName]*camera.Camera
	feed map[types.NamespacedName]chan capture.Frame
}

func (c *cameras) List() []*camera.Camera {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*camera.Camera
	for _, cam := range c.all {
		out = append(out, cam)
	}
	return out
}

func (c *cameras) Get(k types.NamespacedName) (*camera.Camera, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cam, ok := c.all[k]
	return cam, ok
}

func (c *cameras) PolicyOf(types.NamespacedName) types.NamespacedName { return policyKey }

// feedSource delivers the frames the test sends.
type feedSource struct{ ch chan capture.Frame }

func (s feedSource) Run(ctx context.Context, deliver capture.Deliver) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-s.ch:
			deliver(f)
		}
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Now().Truncate(time.Second))}
	var err error
	if f.signer, err = token.GenerateSigningKey(token.EdDSA); err != nil {
		t.Fatal(err)
	}
	f.keys = keyring.New(f.clock)
	f.policy = &camv1.TokenPolicy{}
	f.policy.Namespace, f.policy.Name = policyKey.Namespace, policyKey.Name
	f.policy.Spec.Audience = []string{"camfleet"}
	f.policy.Spec.Tokens.AllowQueryToken = true
	f.publish()
	f.cams = &cameras{all: map[types.NamespacedName]*camera.Camera{}, feed: map[types.NamespacedName]chan capture.Frame{}}
	for _, name := range []string{"front", "back"} {
		key := types.NamespacedName{Namespace: "cams", Name: name}
		ch := make(chan capture.Frame)
		spec := camv1.CameraSpec{NodeName: "pi-1", Source: camv1.CameraSource{Type: camv1.SourceTestPattern, FPS: 10}, Stream: camv1.StreamSpec{MaxClients: 3}}
		cam := camera.New(key, spec, f.clock, logr.Discard(), camera.Hooks{}).
			WithSourceFactory(func(camv1.CameraSource, clock.Clock) (capture.Source, error) { return feedSource{ch}, nil })
		ctx, cancel := context.WithCancel(context.Background())
		cam.Start(ctx)
		t.Cleanup(func() { cancel(); cam.Stop() })
		f.cams.all[key], f.cams.feed[key] = cam, ch
	}
	f.api = &Server{Cameras: f.cams, Keys: f.keys, Clock: f.clock, Log: logr.Discard(), AuthResults: NewAuthResults()}
	f.srv = httptest.NewServer(f.api.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// publish puts the signer's public key (and the policy's revocations) in the policy's status
// and loads it, as the agent does on a TokenPolicy update.
func (f *fixture) publish() {
	f.t.Helper()
	ks, err := token.NewKeySet(f.signer.PublicKey())
	if err != nil {
		f.t.Fatal(err)
	}
	jwks, _ := ks.MarshalJWKS()
	f.policy.Status.Issuer = issuer
	f.policy.Status.ActiveKeyID = f.signer.KeyID
	f.policy.Status.Verification = &camv1.VerificationStatus{JWKS: string(jwks), RevokedTokenIDs: f.policy.Spec.RevokedTokenIDs}
	if err := f.keys.Update(f.policy); err != nil {
		f.t.Fatal(err)
	}
}

// frame sends one JPEG frame to a camera and waits until it is served.
func (f *fixture) frame(cam string) {
	f.t.Helper()
	key := types.NamespacedName{Namespace: "cams", Name: cam}
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, nil)
	before := f.cams.all[key].Stats().Frames
	f.cams.feed[key] <- capture.Frame{Data: buf.Bytes(), Format: capture.FormatMJPEG, Width: 64, Height: 48, Captured: f.clock.Now()}
	testkit.Eventually(f.t, 10*time.Second, "camera "+cam+" to take the frame", func() (bool, string) {
		n := f.cams.all[key].Stats().Frames
		return n != before, fmt.Sprintf("%d frames, as many as before it was sent", n)
	})
}

type tokenOpt func(*token.Claims)

func (f *fixture) token(perms []string, opts ...tokenOpt) string {
	f.t.Helper()
	id, _ := token.NewID()
	now := f.clock.Now()
	c := token.Claims{Issuer: issuer, Subject: "alice", Audience: []string{"camfleet"}, IssuedAt: now, NotBefore: now, Expiry: now.Add(15 * time.Minute), ID: id, Perms: perms}
	for _, o := range opts {
		o(&c)
	}
	tok, err := token.Sign(c, token.TypeAccess, f.signer)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// reply is what a test reads of a response whose body do has already read and closed.
type reply struct {
	StatusCode int
	Header     http.Header
}

func (f *fixture) do(method, path, tok, body string) (reply, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header}, b
}

// TestRoutesRefuseBadTokens: every protected route answers 401 to a missing, malformed,
// expired, revoked, foreign-key or wrong-audience token, without a word about why, and 403 to
// a valid token without the route's permission.
func TestRoutesRefuseBadTokens(t *testing.T) {
	f := newFixture(t)
	f.frame("front")
	all := []string{"camera:stream,snapshot,events:cams/*", "alert:ack:cams/*"}
	other, _ := token.GenerateSigningKey(token.EdDSA)
	foreign := func() string {
		c := token.Claims{Issuer: issuer, Subject: "mallory", Audience: []string{"camfleet"}, Expiry: f.clock.Now().Add(time.Hour), Perms: all}
		tok, _ := token.Sign(c, token.TypeAccess, other)
		return tok
	}()
	revoked := f.token(all, func(c *token.Claims) { c.ID = "stolen-phone" })
	f.policy.Spec.RevokedTokenIDs = []string{"stolen-phone"}
	f.publish()
	tokens := map[string]string{
		"missing": "",
		"garbage": "not.a.token",
		"expired": f.token(all, func(c *token.Claims) {
			c.IssuedAt, c.NotBefore, c.Expiry = c.IssuedAt.Add(-2*time.Hour), c.NotBefore.Add(-2*time.Hour), c.IssuedAt.Add(-time.Hour)
		}),
		"wrong audience": f.token(all, func(c *token.Claims) { c.Audience = []string{"someone-else"} }),
		"wrong issuer":   f.token(all, func(c *token.Claims) { c.Issuer = "https://evil.test" }),
		"unknown key":    foreign,
		"revoked":        revoked,
	}
	routes := []struct{ method, path, body, perm string }{
		{"GET", "/api/cameras", "", ""},
		{"GET", "/api/cameras/cams/front/snapshot.jpg", "", "camera:snapshot:cams/front"},
		{"GET", "/api/cameras/cams/front/events", "", "camera:events:cams/front"},
		{"POST", "/api/ack", `{"count": 1}`, "alert:ack:cams/front"},
	}
	for _, rt := range routes {
		for name, tok := range tokens {
			resp, body := f.do(rt.method, rt.path, tok, rt.body)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with a %s token: %d %s", rt.method, rt.path, name, resp.StatusCode, body)
			}
			if string(body) != "{\"error\":\"unauthorized\"}\n" {
				t.Errorf("%s %s with a %s token: the 401 says %q", rt.method, rt.path, name, body)
			}
		}
		if rt.perm == "" {
			continue
		}
		resp, body := f.do(rt.method, rt.path, f.token([]string{"camera:nothing:*"}), rt.body)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s under-privileged: %d %s", rt.method, rt.path, resp.StatusCode, body)
		}
		resp, body = f.do(rt.method, rt.path, f.token([]string{rt.perm}), rt.body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with %s: %d %s", rt.method, rt.path, rt.perm, resp.StatusCode, body)
		}
	}
	// A valid token for one camera does not reach the other.
	resp, _ := f.do("GET", "/api/cameras/cams/back/snapshot.jpg", f.token([]string{"camera:snapshot:cams/front"}), "")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("snapshot of another camera: %d", resp.StatusCode)
	}
	// Scheme is case-insensitive (RFC 9110 §11.1).
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/cameras/cams/front/snapshot.jpg", nil)
	req.Header.Set("Authorization", "bEaReR "+f.token(all))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("lower-case scheme: %v", err)
	}
	_ = r.Body.Close()
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("lower-case scheme: %s %q", r.Status, r.Header.Get("Content-Type"))
	}
}

// TestCameraList shows only the cameras the token may act on, with its actions.
func TestCameraList(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do("GET", "/api/cameras", f.token([]string{"camera:stream:cams/back"}), "")
	var got struct{ Cameras []cameraView }
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(got.Cameras) != 1 || got.Cameras[0].Name != "back" || strings.Join(got.Cameras[0].Actions, ",") != "stream" || got.Cameras[0].Snapshot != "" {
		t.Errorf("cameras %s", body)
	}
}

// TestAckContract: byte-compatible with the microdot seed, recorded on the events it covers,
// harmless twice.
func TestAckContract(t *testing.T) {
	f := newFixture(t)
	tok := f.token([]string{"alert:ack:cams/*", "camera:events:cams/*"})
	resp, body := f.do("POST", "/api/ack", tok, `{"count": 2}`)
	if resp.StatusCode != 200 || string(body) != `{"ok": true, "user": "alice"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("ack: %d %q", resp.StatusCode, body)
	}
	for _, b := range []string{`{}`, `{"cnt": 1}`, `not json`, ``} {
		resp, body = f.do("POST", "/api/ack", tok, b)
		if resp.StatusCode != 400 || !strings.Contains(string(body), "missing count") {
			t.Errorf("ack %q: %d %s", b, resp.StatusCode, body)
		}
	}
	resp, _ = f.do("POST", "/api/ack", "", `{"count": 1}`)
	if resp.StatusCode != 401 {
		t.Errorf("ack without a token: %d", resp.StatusCode)
	}
}

// TestStreamEndsWhenTokenRevoked: a stream from a query-string token plays, and closes once
// the token's ID is revoked; streams past maxClients get 503.
func TestStreamEndsWhenTokenRevoked(t *testing.T) {
	f := newFixture(t)
	f.api.StillValidEvery = time.Second
	tok := f.token([]string{"camera:stream:cams/front"}, func(c *token.Claims) { c.ID = "phone-1" })
	resp, err := http.Get(f.srv.URL + "/api/cameras/cams/front/stream.mjpeg?access_token=" + tok)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(resp.Body, params["boundary"])
	f.frame("front")
	part, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(part); len(b) == 0 || part.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("first part %d bytes, %v", len(b), part.Header)
	}
	// maxClients is 3: two more fit, the fourth is refused.
	for i := 0; i < 3; i++ {
		r, err := http.Get(f.srv.URL + "/api/cameras/cams/front/stream.mjpeg?access_token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		want := 200
		if i == 2 {
			want = 503
		}
		if r.StatusCode != want {
			t.Errorf("stream client %d: %d, want %d", i+2, r.StatusCode, want)
		}
		defer r.Body.Close()
	}
	f.policy.Spec.RevokedTokenIDs = []string{"phone-1"}
	f.publish()
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := mr.NextPart(); err != nil {
				done <- err
				return
			}
		}
	}()
	for {
		f.clock.Step(time.Second)
		select {
		case err := <-done:
			t.Logf("the stream ended: %v", err)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestSlowStreamClientDoesNotDelayFast: a client that never reads does not hold back one
// that does.
func TestSlowStreamClientDoesNotDelayFast(t *testing.T) {
	f := newFixture(t)
	tok := f.token([]string{"camera:stream:cams/front"})
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /api/cameras/cams/front/stream.mjpeg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n"))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("slow client: %q", line)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/cameras/cams/front/stream.mjpeg", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for i := 0; i < 100; i++ {
		f.frame("front")
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("fast client, frame %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, p)
	}
}

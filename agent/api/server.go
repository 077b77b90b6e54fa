// Package api is a camera node's HTTP API: health and metrics, login and refresh forwarded to
// the token service, the microdot seed's /api/ack, and per camera a snapshot, the MJPEG
// stream and motion events. Every route but health, metrics, login and refresh needs a valid
// access token; a refused token is a 401 that never says why.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/agent/camera"
	"github.com/camfleet/camfleet/agent/keyring"
	"github.com/camfleet/camfleet/internal/bearer"
	"github.com/camfleet/camfleet/internal/jsonhttp"
	"github.com/camfleet/camfleet/internal/token"
)

// maxBody caps request bodies: logins and acks are a few hundred bytes.
const maxBody = 4 << 10

// Cameras is what the API serves: the node's running cameras and the policy of each.
type Cameras interface {
	// List returns the running cameras.
	List() []*camera.Camera
	// Get returns a running camera.
	Get(key types.NamespacedName) (*camera.Camera, bool)
	// PolicyOf is the TokenPolicy governing a camera.
	PolicyOf(key types.NamespacedName) types.NamespacedName
}

// Server is the agent's HTTP API.
type Server struct {
	Cameras Cameras
	Keys    *keyring.Keyring
	Clock   clock.WithTicker
	Log     logr.Logger
	// TokenServiceURL is where login and refresh are forwarded.
	TokenServiceURL string
	// DefaultPolicy answers login and refresh when the node's cameras name several policies.
	DefaultPolicy types.NamespacedName
	// Client forwards login and refresh; a client with a timeout when nil.
	Client *http.Client
	// Metrics is the Prometheus handler for /metrics.
	Metrics http.Handler
	// AuthResults counts token checks by result ("ok" or the verifier's reason code).
	AuthResults *prometheus.CounterVec
	// Ready reports whether the agent has loaded its cameras and keys.
	Ready func() error
	// StillValidEvery is how often a stream rechecks its token; 1s when zero.
	StillValidEvery time.Duration
}

// NewAuthResults is the counter for Server.AuthResults.
func NewAuthResults() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "camfleet_agent_auth_total",
		Help: "Token checks on the agent's API, by result: ok, or the verifier's reason code.",
	}, []string{"result"})
}

// Handler routes the API, with an access log that never records a query string.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("POST /api/login", s.forward("login"))
	mux.HandleFunc("POST /api/refresh", s.forward("refresh"))
	mux.HandleFunc("POST /api/ack", s.ack)
	mux.HandleFunc("GET /api/cameras", s.list)
	mux.HandleFunc("GET /api/cameras/{namespace}/{name}/snapshot.jpg", s.withCamera("snapshot", false, s.snapshot))
	mux.HandleFunc("GET /api/cameras/{namespace}/{name}/stream.mjpeg", s.withCamera("stream", true, s.stream))
	mux.HandleFunc("GET /api/cameras/{namespace}/{name}/events", s.withCamera("events", false, s.events))
	mux.HandleFunc("GET /api/cameras/{namespace}/{name}/events/stream", s.withCamera("events", false, s.eventStream))
	mux.HandleFunc("GET /api/cameras/{namespace}/{name}/events/{id}/snapshot.jpg", s.withCamera("events", false, s.eventSnapshot))
	return s.accessLog(jsonhttp.Mux(mux))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// authenticate reads the Bearer token (or, where allowed, the query-string token) and
// verifies it under policy. On failure it has answered 401 and returns false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, policy types.NamespacedName, queryAllowed bool) (keyring.Principal, string, bool) {
	raw, given := s.tokenOf(r, policy, queryAllowed)
	if !given {
		s.count("missing")
		unauthorized(w, false)
		return keyring.Principal{}, "", false
	}
	p, err := s.Keys.Verify(policy, raw)
	if err != nil {
		s.count(reason(err))
		unauthorized(w, true)
		return keyring.Principal{}, "", false
	}
	s.count("ok")
	return p, raw, true
}

// authenticateAny verifies a token under any policy of the node's cameras, for the routes
// that are not about one camera.
func (s *Server) authenticateAny(w http.ResponseWriter, r *http.Request) (keyring.Principal, types.NamespacedName, bool) {
	raw, given := bearer.Token(r.Header.Get("Authorization"))
	if !given {
		s.count("missing")
		unauthorized(w, r.Header.Get("Authorization") != "")
		return keyring.Principal{}, types.NamespacedName{}, false
	}
	last := keyring.ErrUnknownPolicy
	for _, pol := range s.policies() {
		p, err := s.Keys.Verify(pol, raw)
		if err == nil {
			s.count("ok")
			return p, pol, true
		}
		last = err
	}
	s.count(reason(last))
	unauthorized(w, true)
	return keyring.Principal{}, types.NamespacedName{}, false
}

func (s *Server) tokenOf(r *http.Request, policy types.NamespacedName, queryAllowed bool) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		return bearer.Token(h)
	}
	if queryAllowed && s.Keys.QueryTokensAllowed(policy) {
		if q := r.URL.Query().Get("access_token"); q != "" {
			return q, true
		}
	}
	return "", false
}

// policies are the distinct policies of the node's cameras, in a stable order.
func (s *Server) policies() []types.NamespacedName {
	var out []types.NamespacedName
	for _, c := range s.Cameras.List() {
		p := s.Cameras.PolicyOf(c.Key)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func (s *Server) count(result string) {
	if s.AuthResults != nil {
		s.AuthResults.WithLabelValues(result).Inc()
	}
}

func reason(err error) string {
	var te *token.Error
	if errors.As(err, &te) {
		return string(te.Reason())
	}
	if errors.Is(err, keyring.ErrUnknownPolicy) {
		return "no_keys"
	}
	return "untrusted_issuer"
}

// cameraHandler serves one request for a camera the token may act on.
type cameraHandler func(w http.ResponseWriter, r *http.Request, cam *camera.Camera, who keyring.Principal, raw string)

// withCamera resolves the camera, authenticates under its policy, and checks the
// permission camera:<action>:<namespace>/<name>. An unknown camera is 404 only after
// authentication, so names are not probed without a token.
func (s *Server) withCamera(action string, queryAllowed bool, h cameraHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
		cam, ok := s.Cameras.Get(key)
		var policy types.NamespacedName
		if ok {
			policy = s.Cameras.PolicyOf(key)
		}
		var who keyring.Principal
		var raw string
		if ok {
			if who, raw, ok = s.authenticate(w, r, policy, queryAllowed); !ok {
				return
			}
		} else {
			if _, _, ok := s.authenticateAny(w, r); !ok {
				return
			}
			fail(w, http.StatusNotFound, "no camera "+key.String()+" on this node")
			return
		}
		if !who.Allows("camera", action, key.String()) {
			fail(w, http.StatusForbidden, "the token does not grant camera:"+action+":"+key.String())
			return
		}
		h(w, r, cam, who, raw)
	}
}

// cameraView is one camera in GET /api/cameras.
type cameraView struct {
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	Source     string    `json:"source"`
	Resolution string    `json:"resolution,omitempty"`
	FPS        float64   `json:"fps"`
	Capturing  bool      `json:"capturing"`
	LastMotion time.Time `json:"lastMotion,omitzero"`
	Events     int64     `json:"motionEvents"`
	Actions    []string  `json:"actions"`
	Snapshot   string    `json:"snapshot,omitempty"`
	Stream     string    `json:"stream,omitempty"`
	EventsURL  string    `json:"events,omitempty"`
}

// list shows the cameras of the token's policy that it may do anything with.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	who, pol, ok := s.authenticateAny(w, r)
	if !ok {
		return
	}
	out := []cameraView{}
	for _, c := range s.Cameras.List() {
		if s.Cameras.PolicyOf(c.Key) != pol {
			continue
		}
		v := cameraView{Namespace: c.Key.Namespace, Name: c.Key.Name, Source: string(c.Spec().Source.Type)}
		base := "/api/cameras/" + c.Key.Namespace + "/" + c.Key.Name + "/"
		for _, a := range []string{"stream", "snapshot", "events"} {
			if who.Allows("camera", a, c.Key.String()) {
				v.Actions = append(v.Actions, a)
			}
		}
		if who.Allows("alert", "ack", c.Key.String()) {
			v.Actions = append(v.Actions, "ack")
		}
		if len(v.Actions) == 0 {
			continue
		}
		st := c.Stats()
		if st.Width > 0 {
			v.Resolution = itoa(st.Width) + "x" + itoa(st.Height)
		}
		v.FPS, v.Capturing, v.LastMotion, v.Events = round1(st.FPS), st.Capturing.OK, st.LastMotion, st.MotionEvents
		if slices.Contains(v.Actions, "snapshot") {
			v.Snapshot = base + "snapshot.jpg"
		}
		if slices.Contains(v.Actions, "stream") {
			v.Stream = base + "stream.mjpeg"
		}
		if slices.Contains(v.Actions, "events") {
			v.EventsURL = base + "events"
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b cameraView) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

func (s *Server) snapshot(w http.ResponseWriter, _ *http.Request, cam *camera.Camera, _ keyring.Principal, _ string) {
	b, at, ok := cam.Snapshot()
	if !ok {
		fail(w, http.StatusServiceUnavailable, "no frame captured yet")
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Last-Modified", at.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Length", itoa(len(b)))
	_, _ = w.Write(b)
}

// stream serves the MJPEG stream until the client leaves or its token stops being valid:
// expired, its key removed, or its ID revoked.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, cam *camera.Camera, _ keyring.Principal, raw string) {
	c, err := cam.Hub.Subscribe()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "this camera already has its maximum of stream clients")
		return
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go s.watchToken(ctx, cancel, s.Cameras.PolicyOf(cam.Key), raw)
	_ = cam.Hub.ServeMJPEG(ctx, w, c, cam.MaxFPS())
}

// watchToken cancels a long response once its token no longer verifies.
func (s *Server) watchToken(ctx context.Context, cancel context.CancelFunc, policy types.NamespacedName, raw string) {
	every := s.StillValidEvery
	if every == 0 {
		every = time.Second
	}
	t := s.Clock.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if !s.Keys.Still(policy, raw) {
				cancel()
				return
			}
		}
	}
}

func (s *Server) events(w http.ResponseWriter, _ *http.Request, cam *camera.Camera, _ keyring.Principal, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{"camera": cam.Key.String(), "events": cam.Events.List()})
}

func (s *Server) eventSnapshot(w http.ResponseWriter, r *http.Request, cam *camera.Camera, _ keyring.Principal, _ string) {
	id, ok := atoi(r.PathValue("id"))
	var b []byte
	if ok {
		b, ok = cam.Events.Snapshot(id)
	}
	if !ok {
		fail(w, http.StatusNotFound, "no snapshot for that event")
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", itoa(len(b)))
	_, _ = w.Write(b)
}

// eventStream sends each event update as a Server-Sent Event until the client leaves or its
// token stops being valid.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request, cam *camera.Camera, _ keyring.Principal, raw string) {
	ch, unsubscribe := cam.Events.Subscribe()
	defer unsubscribe()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go s.watchToken(ctx, cancel, s.Cameras.PolicyOf(cam.Key), raw)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": camfleet motion events\n\n"))
	_ = rc.Flush()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-ch:
			b, _ := json.Marshal(ev)
			if _, err := w.Write([]byte("event: motion\nid: " + itoa(int(ev.ID)) + "\ndata: " + string(b) + "\n\n")); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

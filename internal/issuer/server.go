// Package issuer is the token service: per TokenPolicy, login with a password, refresh,
// the JWKS, OpenID Connect discovery and UserInfo, over HTTP. It runs on its own
// (cmd/camfleet-token-service, under an identity of its own) or in the controller binary, on
// every replica; everything it needs is read from the cluster, so any replica answers.
package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/jsonhttp"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
)

// maxBody caps every request body: a login or refresh request is a few hundred bytes.
const maxBody = 4 << 10

// Server is the token service.
type Server struct {
	// Client reads policies and their signing-key Secrets (a cache: New wires one, so that no
	// unauthenticated request reaches the API server) and writes the refresh-session
	// ConfigMaps.
	Client client.Client
	// APIReader reads what must be current: refresh sessions, which another replica may have
	// just written.
	APIReader client.Reader
	// Passwords reads users' password Secrets. New passes a PasswordCache, which
	// holds only Secrets labelled camfleet.io/password=true, so a login costs no API request
	// and a known user's login costs what an unknown user's does; the label is checked here
	// too, whatever reads. APIReader when nil.
	Passwords client.Reader
	Clock     clock.PassiveClock
	// ServiceURL is the service's external URL, the base of default issuers.
	ServiceURL string
	// DefaultPolicy answers /api/login and /api/refresh.
	DefaultPolicy types.NamespacedName
	// Namespaces are the namespaces whose policies are served (--watch-namespaces); empty
	// serves every namespace. A policy elsewhere is unknown, as it is to the caches.
	Namespaces []string
	Log        logr.Logger
	// Rejections counts refused tokens by the verifier's reason code; nil counts nothing.
	Rejections *prometheus.CounterVec

	limits *limiter
	views  *views
	served map[string]bool
	// compare is bcrypt.CompareHashAndPassword when nil; tests see through it which cost
	// each login paid.
	compare func(hash, password []byte) error
	// beforeSessionWrite, when set, runs between reading and writing the session store, so
	// tests can interleave two requests deterministically.
	beforeSessionWrite func()
}

// NewRejectionsMetric is the counter of refused tokens by reason, for Server.Rejections.
func NewRejectionsMetric() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "camfleet_token_rejections_total",
		Help: "Tokens the token service refused, by endpoint and the verifier's reason code.",
	}, []string{"endpoint", "reason"})
}

// rejected logs and counts a refused token: the reason code only, never the token.
func (s *Server) rejected(p *policy, endpoint string, err error) {
	reason := reasonOf(err)
	s.Log.Info("Token refused", "policy", p.Namespace+"/"+p.Name, "endpoint", endpoint, "reason", reason)
	if s.Rejections != nil {
		s.Rejections.WithLabelValues(endpoint, reason).Inc()
	}
}

// Handler routes the token service API.
func (s *Server) Handler() http.Handler {
	s.limits = newLimiter(s.Clock)
	s.views = newViews()
	if len(s.Namespaces) > 0 {
		s.served = map[string]bool{}
		for _, ns := range s.Namespaces {
			s.served[ns] = true
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /policies/{namespace}/{name}/login", s.withPolicy(s.login))
	mux.HandleFunc("POST /policies/{namespace}/{name}/refresh", s.withPolicy(s.refresh))
	mux.HandleFunc("POST /policies/{namespace}/{name}/token", s.withPolicy(s.oauthToken))
	mux.HandleFunc("GET /policies/{namespace}/{name}/jwks.json", s.withPolicy(s.jwks))
	mux.HandleFunc("GET /policies/{namespace}/{name}/.well-known/openid-configuration", s.withPolicy(s.discovery))
	mux.HandleFunc("GET /policies/{namespace}/{name}/userinfo", s.withPolicy(s.userinfo))
	mux.HandleFunc("POST /api/login", s.withDefault(s.login))
	mux.HandleFunc("POST /api/refresh", s.withDefault(s.refresh))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) })
	return jsonhttp.Mux(mux)
}

// policyHandler serves one request for a resolved policy.
type policyHandler func(w http.ResponseWriter, r *http.Request, pol *policy)

func (s *Server) withPolicy(h policyHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, h)
	}
}

func (s *Server) withDefault(h policyHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// A namespace-relative default (a bare name) names a policy per Camera namespace; a
		// login that names no camera cannot pick one.
		if s.DefaultPolicy.Name == "" || s.DefaultPolicy.Namespace == "" {
			fail(w, http.StatusNotFound, "no default token policy is configured; use /policies/{namespace}/{name}/")
			return
		}
		s.serve(w, r, s.DefaultPolicy, h)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, key types.NamespacedName, h policyHandler) {
	pol, err := s.load(r.Context(), key)
	switch {
	case errors.Is(err, errNoPolicy):
		fail(w, http.StatusNotFound, "unknown token policy")
	case err != nil:
		s.Log.Error(err, "Cannot serve policy", "policy", key.String())
		fail(w, http.StatusServiceUnavailable, "the token policy is not ready")
	default:
		h(w, r, pol)
	}
}

// policy is a TokenPolicy, as read for one request, with the view of its version.
type policy struct {
	*camv1.TokenPolicy
	*view
}

var errNoPolicy = errors.New("no such policy")

// load reads the policy from the cache and finds the view of its version. It reads nothing
// else: everything a request needs before it has proven a credential (the JWKS, the
// verifiers, the users and their roles) comes from the policy object.
func (s *Server) load(ctx context.Context, key types.NamespacedName) (*policy, error) {
	if s.served != nil && !s.served[key.Namespace] {
		return nil, errNoPolicy
	}
	p := &camv1.TokenPolicy{}
	if err := s.Client.Get(ctx, key, p); err != nil {
		if apierrors.IsNotFound(err) {
			s.views.forget(key)
			return nil, errNoPolicy
		}
		return nil, fmt.Errorf("read policy %s: %w", key, err)
	}
	v, err := s.views.of(p, s.ServiceURL)
	if err != nil {
		return nil, err
	}
	return &policy{TokenPolicy: p, view: v}, nil
}

// verifier is the policy's strict verifier for typ (trust.AccessType or trust.RefreshType),
// built once per policy version.
func (s *Server) verifier(p *policy, typ string) (*token.Verifier, error) {
	return s.views.verifier(p.view, typ, s.Clock)
}

// signingKey is the policy's active key, read from its Secret on each use so every replica
// signs with the key the controller last activated.
func (s *Server) signingKey(ctx context.Context, p *policy) (token.SigningKey, error) {
	sec := &corev1.Secret{}
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: publication.SecretName(p.Name)}, sec); err != nil {
		return token.SigningKey{}, fmt.Errorf("read signing keys of %s/%s: %w", p.Namespace, p.Name, err)
	}
	set, _ := keys.Decode(sec.Data, s.Clock.Now())
	a := set.Active()
	if a == nil {
		return token.SigningKey{}, fmt.Errorf("policy %s/%s has no active key", p.Namespace, p.Name)
	}
	return token.SigningKey{KeyID: a.ID, Algorithm: token.Algorithm(a.Algorithm), Signer: a.Signer()}, nil
}

// writeJSON and fail are the service's JSON answers.
var (
	writeJSON = jsonhttp.Write
	fail      = jsonhttp.Error
)

// decodeBody reads a small JSON object into v, refusing oversized and malformed bodies with a
// clear message.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
		} else {
			fail(w, http.StatusBadRequest, "request body is not a JSON object")
		}
		return false
	}
	return true
}

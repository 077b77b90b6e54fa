package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// forward sends a login or refresh to the token service, so a phone talks only to the camera:
// to the policy the body names ("policy": "namespace/name"), else the one policy of this
// node's cameras, else the service's default policy.
func (s *Server) forward(endpoint string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.TokenServiceURL == "" {
			fail(w, http.StatusServiceUnavailable, "this agent has no token service configured")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			fail(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		path := "/api/" + endpoint
		if pol, ok := s.forwardPolicy(body); ok {
			path = "/policies/" + pol.Namespace + "/" + pol.Name + "/" + endpoint
		}
		ctx := r.Context()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.TokenServiceURL, "/")+path, bytes.NewReader(body))
		if err != nil {
			fail(w, http.StatusInternalServerError, "cannot build the token service request")
			return
		}
		for _, h := range []string{"Content-Type", "Authorization"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		// The token service rate-limits by client address; tell it whose request this is.
		req.Header.Set("X-Forwarded-For", clientIP(r))
		client := s.Client
		if client == nil {
			client = &http.Client{Timeout: 15 * time.Second}
		}
		resp, err := client.Do(req)
		if err != nil {
			s.Log.Info("Token service unreachable", "endpoint", endpoint, "error", err.Error())
			fail(w, http.StatusBadGateway, "the token service is unreachable")
			return
		}
		defer resp.Body.Close()
		for _, h := range []string{"Content-Type", "Cache-Control", "Retry-After", "WWW-Authenticate"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	}
}

func (s *Server) forwardPolicy(body []byte) (types.NamespacedName, bool) {
	var named struct {
		Policy string `json:"policy"`
	}
	if json.Unmarshal(body, &named) == nil && named.Policy != "" {
		if ns, n, ok := strings.Cut(named.Policy, "/"); ok && ns != "" && n != "" && !strings.Contains(n, "/") {
			return types.NamespacedName{Namespace: ns, Name: n}, true
		}
	}
	pols := s.policies()
	if len(pols) == 1 && pols[0].Name != "" && pols[0] != s.DefaultPolicy {
		return pols[0], true
	}
	return types.NamespacedName{}, false
}

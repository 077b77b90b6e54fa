package issuer

import (
	"errors"
	"net/http"
	"strings"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/bearer"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// jwks serves the policy's public keys as published, for any standard JWT library.
func (s *Server) jwks(w http.ResponseWriter, _ *http.Request, p *policy) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(p.published.JWKS)
}

// discovery serves the OpenID Connect discovery document; its issuer is where the document
// is served from, so discovery clients find everything by the issuer alone.
func (s *Server) discovery(w http.ResponseWriter, _ *http.Request, p *policy) {
	base := strings.TrimSuffix(s.ServiceURL, "/") + "/policies/" + p.Namespace + "/" + p.Name
	alg := string(p.Spec.Algorithm)
	if alg == "" {
		alg = string(camv1.AlgorithmEdDSA)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.issuer,
		"jwks_uri":                              base + "/jwks.json",
		"userinfo_endpoint":                     base + "/userinfo",
		"token_endpoint":                        base + "/token",
		"grant_types_supported":                 []string{"password", "refresh_token"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{alg},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "jti", "perms"},
	})
}

// userinfo answers with the subject and permissions of the Bearer access token, checked by
// the same strict verifier the agents use.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request, p *policy) {
	header := r.Header.Get("Authorization")
	raw, ok := bearer.Token(header)
	if !ok {
		if header != "" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer`)
		}
		fail(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	v, err := s.verifier(p, trust.AccessType)
	if err != nil {
		s.internalError(w, err)
		return
	}
	got, err := v.Verify(raw)
	if err != nil {
		s.rejected(p, "userinfo", err)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		fail(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	perms, err := trust.Permissions(p.TokenPolicy, p.issuer, got)
	if err != nil {
		fail(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if perms == nil {
		perms = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": got.Subject, "iss": got.Issuer, "perms": perms})
}

// reasonOf is the verifier's reason code, for logs and metrics only.
func reasonOf(err error) string {
	var te *token.Error
	if errors.As(err, &te) {
		return string(te.Reason())
	}
	return "error"
}

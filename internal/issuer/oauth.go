package issuer

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// oauthToken is the OAuth 2.0 token endpoint (RFC 6749 §3.2) that discovery advertises:
// form-encoded grant_type=password (§4.3; scope is accepted and ignored) and
// grant_type=refresh_token (§6), answered as §5.1, refused as §5.2.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request, p *policy) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded", 0)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the form cannot be read", 0)
		return
	}
	form := r.PostForm
	var resp tokenResponse
	var gerr *grantError
	switch form.Get("grant_type") {
	case "password":
		user, pass := form.Get("username"), form.Get("password")
		if user == "" || pass == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "username and password are required", 0)
			return
		}
		resp, gerr = s.passwordGrant(r.Context(), p, user, pass, clientAddress(r))
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required", 0)
			return
		}
		resp, gerr = s.refreshGrant(r.Context(), p, rt)
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required", 0)
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token", 0)
		return
	}
	if gerr != nil {
		if gerr.err != nil {
			s.internalError(w, gerr.err)
			return
		}
		status := http.StatusBadRequest // RFC 6749 §5.2: invalid_grant is a 400
		if gerr.status == http.StatusTooManyRequests {
			status = gerr.status
		}
		oauthError(w, status, gerr.code, gerr.message, gerr.retryAfter)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// oauthError answers as RFC 6749 §5.2.
func oauthError(w http.ResponseWriter, status int, code, description string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

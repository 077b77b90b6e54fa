package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/camfleet/camfleet/internal/jsonhttp"
)

// writeJSON and fail are the API's JSON answers.
var (
	writeJSON = jsonhttp.Write
	fail      = jsonhttp.Error
)

// unauthorized is the one answer to every refused token: it never says why (RFC 6750 §3).
func unauthorized(w http.ResponseWriter, tokenGiven bool) {
	if tokenGiven {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	fail(w, http.StatusUnauthorized, "unauthorized")
}

// accessLog logs each request by method, path and status. The query string, which may hold
// a stream's access token, is never logged, and neither is any header.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.Clock.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.Log.V(1).Info("Request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", s.Clock.Since(start).Round(time.Millisecond).String(), "client", clientIP(r))
	})
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection for flushes and deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

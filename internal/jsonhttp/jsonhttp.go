// Package jsonhttp writes the JSON answers every camfleet HTTP API gives: bodies that are
// never cached, errors as {"error": message}, and the mux's own 404 and 405 turned into JSON.
package jsonhttp

import (
	"encoding/json"
	"net/http"
)

// Write answers with a JSON body; tokens in it must never be cached by a proxy.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error answers with {"error": message}.
func Error(w http.ResponseWriter, status int, message string) {
	Write(w, status, map[string]string{"error": message})
}

// Mux turns the mux's own plain-text 404 and 405 answers into JSON errors, so every answer
// of the API is JSON.
func Mux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusOnly{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.status == http.StatusMethodNotAllowed {
			Error(w, rec.status, "method not allowed; use "+rec.header.Get("Allow"))
			return
		}
		Error(w, http.StatusNotFound, "no such endpoint")
	})
}

// statusOnly records what the mux would answer without sending it.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.status = code }

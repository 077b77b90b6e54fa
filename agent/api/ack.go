package api

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ackRequest is the microdot seed's body: count is how many alerts the owner saw. camera,
// "namespace/name", narrows the ack to one camera; without it the ack covers the newest count
// events of every camera the token may acknowledge alerts on.
type ackRequest struct {
	Count  *int   `json:"count"`
	Camera string `json:"camera"`
}

// ack records who acknowledged the newest events, and answers exactly as the microdot seed's
// handler does: {"ok": true, "user": <sub>}. A bad or missing token is refused before the
// body is read; a body without count is 400 "missing count".
func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	who, pol, ok := s.authenticateAny(w, r)
	if !ok {
		return
	}
	var body ackRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Count == nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		fail(w, http.StatusBadRequest, "missing count")
		return
	}
	if *body.Count < 0 {
		fail(w, http.StatusBadRequest, "count must not be negative")
		return
	}
	covered := 0
	for _, c := range s.Cameras.List() {
		if s.Cameras.PolicyOf(c.Key) != pol || (body.Camera != "" && body.Camera != c.Key.String()) {
			continue
		}
		if !who.Allows("alert", "ack", c.Key.String()) {
			continue
		}
		covered++
		c.Events.Ack(who.Subject, *body.Count, s.Clock.Now())
	}
	if covered == 0 {
		what := "any camera on this node"
		if body.Camera != "" {
			what = body.Camera
		}
		fail(w, http.StatusForbidden, "the token does not grant alert:ack on "+what)
		return
	}
	user, _ := json.Marshal(who.Subject)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// Byte for byte what microdot sends for the seed's {'ok': True, 'user': ...}.
	_, _ = w.Write([]byte(`{"ok": true, "user": ` + string(user) + `}`))
}

package permission

import (
	"errors"
	"fmt"
)

// Set is a compiled list of granted permissions. The zero value grants
// nothing. A Set is immutable and safe for concurrent use.
type Set struct {
	perms []Permission
}

// Compile parses every granted permission once. It reports every string that
// does not parse, not just the first.
func Compile(perms []string) (Set, error) {
	s := Set{perms: make([]Permission, 0, len(perms))}
	var errs []error
	for _, text := range perms {
		p, err := Parse(text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.perms = append(s.perms, p)
	}
	if len(errs) > 0 {
		return Set{}, fmt.Errorf("compile permissions: %w", errors.Join(errs...))
	}
	return s, nil
}

// Implies reports whether any granted permission implies q.
func (s Set) Implies(q Permission) bool {
	for _, p := range s.perms {
		if p.Implies(q) {
			return true
		}
	}
	return false
}

// Allows reports whether the set grants the request given as its parts, for
// example Allows("camera", "stream", "cams/backyard"). The parts are taken
// literally (a "," or "*" in them has no special meaning), which is what a
// route handler wants when it builds the request from a URL. An empty request
// or an empty part is never allowed. It does not allocate.
func (s Set) Allows(parts ...string) bool {
	if len(parts) == 0 {
		return false
	}
	for _, r := range parts {
		if r == "" {
			return false
		}
	}
	for _, p := range s.perms {
		if p.allows(parts) {
			return true
		}
	}
	return false
}

// Len returns the number of granted permissions.
func (s Set) Len() int { return len(s.perms) }

// Strings returns the granted permissions as written.
func (s Set) Strings() []string {
	out := make([]string, len(s.perms))
	for i, p := range s.perms {
		out[i] = p.text
	}
	return out
}

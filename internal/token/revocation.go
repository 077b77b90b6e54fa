package token

// Revocations is an immutable set of revoked token IDs ("jti"). Agents build a
// new one whenever the policy's revocation list changes and swap it into the
// verifier with SetRevocations; a nil *Revocations revokes nothing.
type Revocations struct {
	ids map[string]struct{}
}

// NewRevocations returns a set of the given token IDs. Empty IDs are ignored:
// a token without "jti" cannot be revoked by ID.
func NewRevocations(ids ...string) *Revocations {
	r := &Revocations{ids: make(map[string]struct{}, len(ids))}
	for _, id := range ids {
		if id != "" {
			r.ids[id] = struct{}{}
		}
	}
	return r
}

// Contains reports whether id is revoked.
func (r *Revocations) Contains(id string) bool {
	if r == nil {
		return false
	}
	_, ok := r.ids[id]
	return ok
}

// containsBytes is Contains without converting id to a string first; the
// compiler does the map lookup on the bytes directly.
func (r *Revocations) containsBytes(id []byte) bool {
	if r == nil {
		return false
	}
	_, ok := r.ids[string(id)]
	return ok
}

// Len returns the number of revoked IDs.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.ids)
}

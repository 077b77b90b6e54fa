package keys

import (
	"slices"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// AddPending adds a freshly generated key that will sign after publishAhead, or when the
// active key's period ends if that is later. A pending key of another algorithm is dropped:
// it never signed, so nothing depends on it.
func (s *Set) AddPending(k *Key, p Params, now time.Time) {
	s.Keys = slices.DeleteFunc(s.Keys, func(o *Key) bool { return o.State == camv1.KeyPending })
	k.State = camv1.KeyPending
	k.Activates = now.Add(p.PublishAhead).Truncate(time.Second)
	if a := s.Active(); a != nil && a.Algorithm == k.Algorithm {
		if due := a.Activates.Add(p.Period); due.After(k.Activates) {
			k.Activates = due
		}
	}
	s.Add(k)
}

// AddRequested adds a key made for a rotate request: it replaces any pending key and is due at
// once, so it signs as soon as the agents hold it (see Activation).
func (s *Set) AddRequested(k *Key, now time.Time) {
	s.Keys = slices.DeleteFunc(s.Keys, func(o *Key) bool { return o.State == camv1.KeyPending })
	k.State, k.Activates, k.Requested = camv1.KeyPending, now.Truncate(time.Second), true
	s.Add(k)
}

// AddActive adds a key that signs at once: a new policy, a lost active key, or an emergency
// rotation. Pending keys are dropped (they never signed); the previous active key retires, or
// with revoke every previous key is removed at once.
func (s *Set) AddActive(k *Key, revoke bool, now time.Time) {
	now = now.Truncate(time.Second)
	s.Keys = slices.DeleteFunc(s.Keys, func(o *Key) bool { return o.State == camv1.KeyPending || revoke })
	for _, o := range s.Keys {
		if o.State == camv1.KeyActive {
			o.State, o.Retires = camv1.KeyRetiring, now
		}
	}
	k.State, k.Activates = camv1.KeyActive, now
	s.Add(k)
}

// Activate makes the pending key the signing key and retires the previous one.
func (s *Set) Activate(pending *Key, now time.Time) {
	now = now.Truncate(time.Second)
	for _, o := range s.Keys {
		if o.State == camv1.KeyActive {
			o.State, o.Retires = camv1.KeyRetiring, now
		}
	}
	pending.State, pending.Activates, pending.Requested = camv1.KeyActive, now, false
}

// Prune removes the retiring keys whose tokens have all expired, and returns them.
func (s *Set) Prune(p Params, now time.Time) []*Key {
	var gone []*Key
	s.Keys = slices.DeleteFunc(s.Keys, func(k *Key) bool {
		if k.State == camv1.KeyRetiring && !now.Before(RemoveAfter(k, p)) {
			gone = append(gone, k)
			return true
		}
		return false
	})
	return gone
}

// MarkPublished records that a JWKS holding every key of the set has been written. It
// returns the keys published for the first time.
func (s *Set) MarkPublished(now time.Time) []*Key {
	var fresh []*Key
	for _, k := range s.Keys {
		if k.Published.IsZero() {
			k.Published = now.Truncate(time.Second)
			fresh = append(fresh, k)
		}
	}
	return fresh
}

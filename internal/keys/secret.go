package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// SecretType marks the Secrets that hold a policy's private keys.
const SecretType = "camfleet.io/signing-keys"

// metadataKey is the Secret data key of the lifecycle record; each private key is stored
// beside it under "<kid>.pem".
const metadataKey = "keys.json"

// Set is every key of one policy, oldest first, and the last emergency rotation acted on.
// It lives in one Secret, so the record of what was done and the keys are written together:
// a controller that dies at any point finds both, never one without the other.
type Set struct {
	Keys []*Key
	// RotateRequest is the last value of the camfleet.io/rotate annotation acted on. It is
	// stored beside the keys so a new value rotates exactly once, even across restarts.
	RotateRequest string
}

// Active is the signing key, or nil.
func (s *Set) Active() *Key { return s.first(camv1.KeyActive) }

// Pending is the key waiting to sign, or nil.
func (s *Set) Pending() *Key { return s.first(camv1.KeyPending) }

func (s *Set) first(state camv1.KeyState) *Key {
	for _, k := range s.Keys {
		if k.State == state {
			return k
		}
	}
	return nil
}

// Get is the key with this ID, or nil.
func (s *Set) Get(kid string) *Key {
	for _, k := range s.Keys {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

// Add appends a key, keeping the set ordered by creation.
func (s *Set) Add(k *Key) {
	s.Keys = append(s.Keys, k)
	s.sort()
}

// Remove drops a key.
func (s *Set) Remove(kid string) {
	s.Keys = slices.DeleteFunc(s.Keys, func(k *Key) bool { return k.ID == kid })
}

func (s *Set) sort() {
	sort.SliceStable(s.Keys, func(i, j int) bool {
		if !s.Keys[i].Created.Equal(s.Keys[j].Created) {
			return s.Keys[i].Created.Before(s.Keys[j].Created)
		}
		return s.Keys[i].ID < s.Keys[j].ID
	})
}

type record struct {
	Version       int           `json:"version"`
	RotateRequest string        `json:"rotateRequest,omitempty"`
	Keys          []keyMetadata `json:"keys"`
}

type keyMetadata struct {
	ID        string                 `json:"kid"`
	Algorithm camv1.SigningAlgorithm `json:"alg"`
	State     camv1.KeyState         `json:"state"`
	Created   time.Time              `json:"created"`
	Published *time.Time             `json:"published,omitempty"`
	Activates *time.Time             `json:"activates,omitempty"`
	Retires   *time.Time             `json:"retires,omitempty"`
	Requested bool                   `json:"requested,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// Encode renders the set as Secret data: the lifecycle record and one PKCS#8 PEM per key.
// The same set always encodes to the same bytes, so an unchanged set writes nothing.
func (s *Set) Encode() (map[string][]byte, error) {
	rec := record{Version: 1, RotateRequest: s.RotateRequest, Keys: []keyMetadata{}}
	data := map[string][]byte{}
	for _, k := range s.Keys {
		rec.Keys = append(rec.Keys, keyMetadata{
			ID: k.ID, Algorithm: k.Algorithm, State: k.State, Created: k.Created.UTC(),
			Published: timePtr(k.Published), Activates: timePtr(k.Activates), Retires: timePtr(k.Retires),
			Requested: k.Requested,
		})
		der, err := x509.MarshalPKCS8PrivateKey(k.signer)
		if err != nil {
			return nil, fmt.Errorf("encode key %s: %w", k.ID, err)
		}
		data[k.ID+".pem"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	meta, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode key metadata: %w", err)
	}
	data[metadataKey] = meta
	return data, nil
}

// Problem is something wrong with a stored key set that Decode worked around. Its message
// names the key and what is wrong, never the key material.
type Problem struct {
	// Reason is CamelCase, for conditions and Events.
	Reason  string
	Message string
}

// Decode reads a Secret's data back into a Set. It never fails: whatever cannot be trusted
// (a corrupt PEM, a weak or mismatched key, a kid that is not the key's thumbprint, a record
// edited by hand) is left out and reported as a Problem, so the controller can heal the
// Secret instead of crash-looping on it. A sound private key whose record was lost is kept as
// Retiring from now: it signs nothing more, and the tokens it signed go on verifying.
func Decode(data map[string][]byte, now time.Time) (*Set, []Problem) {
	set := &Set{}
	if len(data) == 0 {
		return set, nil
	}
	var problems []Problem
	var rec record
	if raw, ok := data[metadataKey]; !ok {
		problems = append(problems, Problem{"KeyMetadataMissing", "the signing-key Secret has no " + metadataKey + "; its keys cannot be trusted and are replaced"})
	} else if err := json.Unmarshal(raw, &rec); err != nil || rec.Version != 1 {
		problems = append(problems, Problem{"KeyMetadataCorrupt", "the signing-key Secret's " + metadataKey + " is not a valid key record; its keys are replaced"})
		rec = record{}
	}
	set.RotateRequest = rec.RotateRequest
	listed := map[string]bool{}
	for _, m := range rec.Keys {
		if listed[m.ID] {
			problems = append(problems, Problem{"KeyDuplicated", fmt.Sprintf("key %s is listed twice; the second entry is dropped", m.ID)})
			continue
		}
		listed[m.ID] = true
		k, err := decodeKey(m, data[m.ID+".pem"])
		if err != nil {
			problems = append(problems, Problem{"KeyInvalid", fmt.Sprintf("key %s dropped: %v", safeID(m.ID), err)})
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	now = now.UTC().Truncate(time.Second)
	for name := range data {
		kid, ok := strings.CutSuffix(name, ".pem")
		if !ok || listed[kid] {
			continue
		}
		k, err := recoverKey(kid, data[name], now)
		if err != nil {
			problems = append(problems, Problem{"KeyUnlisted", fmt.Sprintf("key %s has no lifecycle record and is dropped: %v", safeID(kid), err)})
			continue
		}
		problems = append(problems, Problem{"KeyRecovered", fmt.Sprintf("key %s had no lifecycle record; it is kept as retiring so its tokens still verify", kid)})
		set.Keys = append(set.Keys, k)
	}
	set.sort()
	problems = append(problems, set.normalizeActive()...)
	return set, problems
}

func decodeKey(m keyMetadata, pemBytes []byte) (*Key, error) {
	switch m.State {
	case camv1.KeyPending, camv1.KeyActive, camv1.KeyRetiring:
	default:
		return nil, fmt.Errorf("unknown state %q", m.State)
	}
	signer, alg, err := parsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	if alg != m.Algorithm {
		return nil, fmt.Errorf("it is recorded as %s but the key is for %s", m.Algorithm, alg)
	}
	kid, err := Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	if kid != m.ID {
		return nil, fmt.Errorf("its kid is not the thumbprint of its key (edited by hand?)")
	}
	return &Key{
		ID: m.ID, Algorithm: m.Algorithm, State: m.State, Created: m.Created.UTC(),
		Published: timeOf(m.Published), Activates: timeOf(m.Activates), Retires: timeOf(m.Retires), Requested: m.Requested,
		signer: signer,
	}, nil
}

// recoverKey keeps a private key that lost its record, as long as the key itself is sound.
func recoverKey(kid string, pemBytes []byte, now time.Time) (*Key, error) {
	_, alg, err := parsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	m := keyMetadata{ID: kid, Algorithm: alg, State: camv1.KeyRetiring, Created: now, Published: &now, Activates: &now, Retires: &now}
	return decodeKey(m, pemBytes)
}

// parsePrivateKey reads a PKCS#8 PEM private key and the algorithm it can serve. Its errors
// describe the problem, never the bytes.
func parsePrivateKey(pemBytes []byte) (crypto.Signer, camv1.SigningAlgorithm, error) {
	if len(pemBytes) == 0 {
		return nil, "", fmt.Errorf("its private key is missing")
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, "", fmt.Errorf("its private key is not a PKCS#8 PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("its private key does not parse")
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("its private key cannot sign")
	}
	alg, err := algorithmOf(signer)
	return signer, alg, err
}

// normalizeActive keeps at most one active key (the one that activated last) and demotes the
// others, which only a hand edit can cause.
func (s *Set) normalizeActive() []Problem {
	var active []*Key
	for _, k := range s.Keys {
		if k.State == camv1.KeyActive {
			active = append(active, k)
		}
	}
	if len(active) < 2 {
		return nil
	}
	newest := active[0]
	for _, k := range active[1:] {
		if k.Activates.After(newest.Activates) {
			newest = k
		}
	}
	for _, k := range active {
		if k != newest {
			k.State = camv1.KeyRetiring
			k.Retires = newest.Activates
		}
	}
	return []Problem{{"SeveralActiveKeys", fmt.Sprintf("%d keys were marked active; only %s stays active", len(active), newest.ID)}}
}

// safeID shortens an untrusted key name for messages, so a hand-edited Secret cannot push
// arbitrary text into conditions and Events.
func safeID(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// StateFile is the file under --state-dir holding the last verification material.
const StateFile = "verification.json"

// stateVersion is the version of the state file this agent writes and reads. Version 1 (no
// checksum) and any newer version are refused: the agent would rather refuse every token
// than enforce from material it cannot check.
const stateVersion = 2

// stateDoc is the state file: the payload as written, and the SHA-256 of its bytes.
type stateDoc struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	Payload json.RawMessage `json:"payload"`
}

// statePayload is the verification material: each policy as loaded (spec and status; the
// keyring reads status.issuer, status.verification and the spec's external issuers), and
// the cameras the agent ran, so a restart during an outage serves them again.
type statePayload struct {
	Policies []*camv1.TokenPolicy `json:"policies"`
	Cameras  []stateCamera        `json:"cameras,omitempty"`
}

// stateCamera is one camera the agent ran: its spec, generation and governing policy.
type stateCamera struct {
	Namespace       string           `json:"namespace"`
	Name            string           `json:"name"`
	Generation      int64            `json:"generation"`
	PolicyNamespace string           `json:"policyNamespace"`
	PolicyName      string           `json:"policyName"`
	Spec            camv1.CameraSpec `json:"spec"`
}

// Reasons a state file is refused, the label of the load-failure counter.
const (
	StateMissing  = "missing"
	StateEmpty    = "empty"
	StateCorrupt  = "corrupt"
	StateChecksum = "checksum"
	StateVersion  = "version"
	StateInvalid  = "invalid"
)

// StateError says why a state file was refused.
type StateError struct {
	Reason string
	Err    error
}

func (e *StateError) Error() string { return "state file " + e.Reason + ": " + e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }

func stateErr(reason, format string, args ...any) error {
	return &StateError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// encodeState is the state file for policies and cameras. The policies' managedFields are
// dropped.
func encodeState(policies []*camv1.TokenPolicy, cameras []stateCamera) ([]byte, error) {
	ps := make([]*camv1.TokenPolicy, 0, len(policies))
	for _, p := range policies {
		p = p.DeepCopy()
		p.ManagedFields = nil
		ps = append(ps, p)
	}
	payload, err := json.Marshal(statePayload{Policies: ps, Cameras: cameras})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	return json.Marshal(stateDoc{Version: stateVersion, SHA256: hex.EncodeToString(sum[:]), Payload: payload})
}

// decodeState checks and reads a state file. Any error is a *StateError.
func decodeState(b []byte) (*statePayload, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, stateErr(StateEmpty, "the file is empty")
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, stateErr(StateCorrupt, "unreadable: %v", err)
	}
	if doc.Version != stateVersion {
		return nil, stateErr(StateVersion, "version %d, this agent reads version %d only", doc.Version, stateVersion)
	}
	sum := sha256.Sum256(doc.Payload)
	if doc.SHA256 != hex.EncodeToString(sum[:]) {
		return nil, stateErr(StateChecksum, "the payload's SHA-256 does not match the one recorded")
	}
	var p statePayload
	if err := json.Unmarshal(doc.Payload, &p); err != nil {
		return nil, stateErr(StateCorrupt, "payload unreadable: %v", err)
	}
	for i, pol := range p.Policies {
		if pol == nil || pol.Name == "" || pol.Namespace == "" {
			return nil, stateErr(StateInvalid, "policy %d has no namespace/name", i)
		}
	}
	for i, c := range p.Cameras {
		if c.Name == "" || c.Namespace == "" {
			return nil, stateErr(StateInvalid, "camera %d has no namespace/name", i)
		}
	}
	return &p, nil
}

// readState reads and checks the state file under dir.
func readState(dir string) (*statePayload, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, stateErr(StateMissing, "%s does not exist", filepath.Join(dir, StateFile))
	}
	if err != nil {
		return nil, stateErr(StateCorrupt, "%v", err)
	}
	return decodeState(b)
}

// writeState replaces the state file under dir atomically: a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced.
func writeState(dir string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, StateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, StateFile)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

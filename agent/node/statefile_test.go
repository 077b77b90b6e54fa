package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func statePolicy(name string) *camv1.TokenPolicy {
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = "cams", name
	p.Status.Issuer = "https://tokens.test/policies/cams/" + name
	p.Status.Verification = &camv1.VerificationStatus{JWKS: `{"keys":[]}`, RevokedTokenIDs: []string{"gone"}}
	return p
}

// TestStateFileRoundTripAndRefusals: what encodeState writes decodeState reads back; a
// file that is empty, truncated, altered, of another version or without names is refused
// with its reason.
func TestStateFileRoundTripAndRefusals(t *testing.T) {
	cams := []stateCamera{{Namespace: "cams", Name: "porch", Generation: 3, PolicyNamespace: "cams", PolicyName: "home",
		Spec: camv1.CameraSpec{NodeName: "pi", Source: camv1.CameraSource{Type: camv1.SourceTestPattern}}}}
	good, err := encodeState([]*camv1.TokenPolicy{statePolicy("home"), statePolicy("work")}, cams)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(good)
	if err != nil || len(got.Policies) != 2 || got.Policies[0].Name != "home" || got.Policies[1].Status.Verification.RevokedTokenIDs[0] != "gone" ||
		len(got.Cameras) != 1 || got.Cameras[0].Generation != 3 || got.Cameras[0].Spec.Source.Type != camv1.SourceTestPattern {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if none, err := encodeState(nil, nil); err != nil {
		t.Fatal(err)
	} else if got, err := decodeState(none); err != nil || len(got.Policies) != 0 {
		t.Fatalf("no policies: %+v %v", got, err)
	}
	reencode := func(f func(*stateDoc)) []byte {
		var d stateDoc
		if err := json.Unmarshal(good, &d); err != nil {
			t.Fatal(err)
		}
		f(&d)
		b, _ := json.Marshal(d)
		return b
	}
	for _, tc := range []struct {
		name   string
		file   []byte
		reason string
	}{
		{"empty", nil, StateEmpty},
		{"blank", []byte(" \n"), StateEmpty},
		{"truncated", good[:len(good)/2], StateCorrupt},
		{"not json", []byte("verification"), StateCorrupt},
		{"altered payload", bytes.Replace(good, []byte(`"gone"`), []byte(`"gonf"`), 1), StateChecksum},
		{"altered checksum", reencode(func(d *stateDoc) { d.SHA256 = "00" + d.SHA256[2:] }), StateChecksum},
		{"no checksum", reencode(func(d *stateDoc) { d.SHA256 = "" }), StateChecksum},
		{"newer version", reencode(func(d *stateDoc) { d.Version = stateVersion + 1 }), StateVersion},
		{"version 1, unchecked", []byte(`{"version":1,"policies":[]}`), StateVersion},
		{"no version", []byte(`{}`), StateVersion},
		{"payload not policies", reencode(func(d *stateDoc) {
			d.Payload = json.RawMessage(`{"policies":"x"}`)
			d.SHA256 = sha(d.Payload)
		}), StateCorrupt},
		{"policy without a name", reencode(func(d *stateDoc) {
			d.Payload = json.RawMessage(`{"policies":[{"metadata":{"namespace":"cams"}}]}`)
			d.SHA256 = sha(d.Payload)
		}), StateInvalid},
		{"camera without a name", reencode(func(d *stateDoc) {
			d.Payload = json.RawMessage(`{"policies":[],"cameras":[{"namespace":"cams"}]}`)
			d.SHA256 = sha(d.Payload)
		}), StateInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeState(tc.file)
			var se *StateError
			if !errors.As(err, &se) || se.Reason != tc.reason || got != nil {
				t.Fatalf("got %v %v, want reason %s", got, err, tc.reason)
			}
		})
	}
}

// TestStateFileWriteIsAtomic: writeState replaces the file whole and leaves no temporary
// file; readState says missing for a directory without one.
func TestStateFileWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	var se *StateError
	if _, err := readState(dir); !errors.As(err, &se) || se.Reason != StateMissing {
		t.Fatalf("missing file: %v", err)
	}
	for _, names := range [][]string{{"home"}, {"home", "work"}} {
		var ps []*camv1.TokenPolicy
		for _, n := range names {
			ps = append(ps, statePolicy(n))
		}
		b, err := encodeState(ps, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeState(dir, b); err != nil {
			t.Fatal(err)
		}
		got, err := readState(dir)
		if err != nil || len(got.Policies) != len(names) {
			t.Fatalf("read back %+v, %v", got, err)
		}
	}
	if entries, _ := filepathGlob(dir); len(entries) != 1 {
		t.Errorf("files left in the state dir: %v", entries)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func filepathGlob(dir string) ([]string, error) { return filepath.Glob(filepath.Join(dir, "*")) }

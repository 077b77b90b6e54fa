package node

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/camfleet/camfleet/agent/camera"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func TestDesiredStatus(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	capturing := camera.Condition{OK: true, Reason: "Capturing", Message: "receiving frames"}
	detecting := camera.Condition{OK: true, Reason: "Detecting", Message: "on"}
	// The controller's conditions in the stored status, which the agent must never carry.
	stored := camv1.CameraStatus{ObservedGeneration: 2, TokenPolicy: "ns/home", Conditions: []metav1.Condition{
		{Type: camv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded"},
		{Type: camv1.ConditionPolicyResolved, Status: metav1.ConditionTrue, Reason: "Found"},
		{Type: camv1.ConditionCapturing, Status: metav1.ConditionTrue, Reason: "Capturing", Message: "receiving frames", ObservedGeneration: 2, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))},
	}}
	for _, tc := range []struct {
		name string
		o    observed
		want map[string]string // condition type: status/reason
	}{
		{"serving", observed{generation: 2, keysOK: true, loaded: []string{"k1"}, active: "k1", stats: camera.Stats{Width: 640, Height: 480, FPS: 14.96, Capturing: capturing, Motion: detecting, LastFrame: now}},
			map[string]string{camv1.ConditionCapturing: "True/Capturing", camv1.ConditionMotionDetection: "True/Detecting", camv1.ConditionKeysLoaded: "True/Loaded"}},
		{"source failing", observed{generation: 2, keysOK: true, stats: camera.Stats{Capturing: camera.Condition{Reason: "DeviceNotFound", Message: "no /dev/video0"}, Motion: detecting}},
			map[string]string{camv1.ConditionCapturing: "False/DeviceNotFound", camv1.ConditionMotionDetection: "True/Detecting", camv1.ConditionKeysLoaded: "True/Loaded"}},
		{"no keys", observed{generation: 2, stats: camera.Stats{Capturing: capturing, Motion: detecting}},
			map[string]string{camv1.ConditionCapturing: "True/Capturing", camv1.ConditionMotionDetection: "True/Detecting", camv1.ConditionKeysLoaded: "False/NoVerificationKeys"}},
		{"suspended", observed{generation: 3, suspended: true, keysOK: true, loaded: []string{"k1"}},
			map[string]string{camv1.ConditionCapturing: "False/Suspended"}},
	} {
		st := desiredStatus(stored, tc.o, now)
		got := map[string]string{}
		for _, c := range st.Conditions {
			got[c.Type] = string(c.Status) + "/" + c.Reason
			if c.ObservedGeneration != tc.o.generation {
				t.Errorf("%s: %s observes generation %d, want %d", tc.name, c.Type, c.ObservedGeneration, tc.o.generation)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: conditions %v, want %v", tc.name, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s is %s, want %s", tc.name, k, got[k], v)
			}
		}
		if st.ObservedGeneration != 0 || st.TokenPolicy != "" {
			t.Errorf("%s: the agent claims the controller's fields: %+v", tc.name, st)
		}
		if tc.name == "serving" {
			if st.Resolution != "640x480" || st.FPS != "15.0" || st.EnforcedKeyID != "k1" || st.LastFrameTime == nil {
				t.Errorf("serving: %+v", st)
			}
			if c := meta.FindStatusCondition(st.Conditions, camv1.ConditionCapturing); !c.LastTransitionTime.Time.Equal(now.Add(-time.Hour)) {
				t.Errorf("Capturing held its status but its transition time moved to %s", c.LastTransitionTime)
			}
		}
		if tc.name == "suspended" && (st.LoadedKeyIDs != nil || st.FPS != "") {
			t.Errorf("suspended: %+v", st)
		}
	}
}

func TestWriteDue(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	frame := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	base := camv1.CameraStatus{FPS: "15.0", LastFrameTime: frame(0), LoadedKeyIDs: []string{"k1"}, EnforcedKeyID: "k1",
		Conditions: []metav1.Condition{{Type: camv1.ConditionCapturing, Status: metav1.ConditionTrue, Reason: "Capturing", ObservedGeneration: 1}}}
	with := func(f func(*camv1.CameraStatus)) camv1.CameraStatus { s := *base.DeepCopy(); f(&s); return s }
	for _, tc := range []struct {
		name  string
		next  camv1.CameraStatus
		since time.Duration
		hold  time.Duration // keys held since t0, a key-only change held this long
		want  bool
	}{
		{"nothing changed, a minute on", base, time.Minute, 0, false},
		{"nothing changed, a heartbeat on", base, heartbeatEvery, 0, true},
		{"frame rate and last frame moved, a minute on", with(func(s *camv1.CameraStatus) { s.LastFrameTime, s.FPS = frame(time.Minute), "14.9" }), time.Minute, 0, false},
		{"frame rate and last frame moved, a heartbeat on", with(func(s *camv1.CameraStatus) { s.LastFrameTime, s.FPS = frame(time.Minute), "14.9" }), heartbeatEvery, 0, true},
		{"a new motion event, 3 s on", with(func(s *camv1.CameraStatus) { s.MotionEvents = 1 }), 3 * time.Second, 0, false},
		{"a new motion event, 10 s on", with(func(s *camv1.CameraStatus) { s.MotionEvents = 1 }), 10 * time.Second, 0, true},
		{"a condition changed", with(func(s *camv1.CameraStatus) { s.Conditions[0].Status = metav1.ConditionFalse }), time.Second, 0, true},
		{"a new key loaded", with(func(s *camv1.CameraStatus) { s.LoadedKeyIDs = []string{"k1", "k2"} }), time.Second, 0, true},
		{"a new key loaded, 1 s into a 3 s hold", with(func(s *camv1.CameraStatus) { s.LoadedKeyIDs = []string{"k1", "k2"} }), time.Second, 3 * time.Second, false},
		{"a new key loaded, 3 s into a 3 s hold", with(func(s *camv1.CameraStatus) { s.LoadedKeyIDs = []string{"k1", "k2"} }), 3 * time.Second, 3 * time.Second, true},
		{"a new key and a condition changed, in a hold", with(func(s *camv1.CameraStatus) {
			s.LoadedKeyIDs = []string{"k1", "k2"}
			s.Conditions[0].Status = metav1.ConditionFalse
		}), time.Second, 3 * time.Second, true},
		{"a new generation served", with(func(s *camv1.CameraStatus) { s.Conditions[0].ObservedGeneration = 2 }), time.Second, 0, true},
	} {
		if got := writeDue(base, tc.next, t0, t0, t0.Add(tc.since), tc.hold); got != tc.want {
			t.Errorf("%s: writeDue %v, want %v", tc.name, got, tc.want)
		}
	}
	if !writeDue(camv1.CameraStatus{}, base, time.Time{}, t0, t0, keyReportSpread) {
		t.Error("the first status is not written")
	}
	if heartbeatEvery < time.Minute {
		t.Errorf("a heartbeat every %s writes a settled camera's status more than once a minute", heartbeatEvery)
	}
}

func TestOnlyKeysChanged(t *testing.T) {
	keysLoaded := func(msg string) metav1.Condition {
		return metav1.Condition{Type: camv1.ConditionKeysLoaded, Status: metav1.ConditionTrue, Reason: "Loaded", Message: msg, ObservedGeneration: 1}
	}
	base := camv1.CameraStatus{FPS: "15.0", LoadedKeyIDs: []string{"k1"}, EnforcedKeyID: "k1", Endpoint: "http://pi-a/",
		Conditions: []metav1.Condition{{Type: camv1.ConditionCapturing, Status: metav1.ConditionTrue, Reason: "Capturing", ObservedGeneration: 1},
			keysLoaded("1 keys of the camera's TokenPolicy loaded")}}
	with := func(f func(*camv1.CameraStatus)) camv1.CameraStatus { s := *base.DeepCopy(); f(&s); return s }
	newKey := func(s *camv1.CameraStatus) {
		s.LoadedKeyIDs = []string{"k1", "k2"}
		s.Conditions[1] = keysLoaded("2 keys of the camera's TokenPolicy loaded")
	}
	for _, tc := range []struct {
		name string
		next camv1.CameraStatus
		want bool
	}{
		{"nothing changed", base, false},
		{"a pending key loaded, its count in the message", with(newKey), true},
		{"the new key enforced, the old one gone", with(func(s *camv1.CameraStatus) { s.LoadedKeyIDs, s.EnforcedKeyID = []string{"k2"}, "k2" }), true},
		{"a new key and the capture failing", with(func(s *camv1.CameraStatus) { newKey(s); s.Conditions[0].Status = metav1.ConditionFalse }), false},
		{"keys lost: KeysLoaded turns false", with(func(s *camv1.CameraStatus) {
			s.LoadedKeyIDs, s.EnforcedKeyID = nil, ""
			s.Conditions[1].Status, s.Conditions[1].Reason = metav1.ConditionFalse, camv1.ReasonNoVerificationKeys
		}), false},
		{"a new key and a new endpoint", with(func(s *camv1.CameraStatus) { newKey(s); s.Endpoint = "http://pi-a:8443/" }), false},
		{"a frame rate alone", with(func(s *camv1.CameraStatus) { s.FPS = "14.0" }), false},
	} {
		if got := onlyKeysChanged(base, tc.next); got != tc.want {
			t.Errorf("%s: onlyKeysChanged %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKeyReportOffsetsSpreadNodes(t *testing.T) {
	seen := map[time.Duration]bool{}
	first, last := keyReportDelay, keyReportDelay+keyReportSpread
	lo, hi := last, time.Duration(0)
	for i := range 1000 {
		node := fmt.Sprintf("pi-%04d", i)
		d := keyReportOffset(node)
		if d < first || d >= last {
			t.Fatalf("%s: offset %s outside [%s, %s)", node, d, first, last)
		}
		if d != keyReportOffset(node) {
			t.Fatalf("%s: offset not stable", node)
		}
		seen[d], lo, hi = true, min(lo, d), max(hi, d)
	}
	// 1000 nodes over 8000 possible milliseconds: nearly all distinct, reaching both ends.
	if len(seen) < 900 || lo > first+keyReportSpread/10 || hi < first+keyReportSpread*9/10 {
		t.Errorf("1000 nodes got %d distinct offsets between %s and %s", len(seen), lo, hi)
	}
}

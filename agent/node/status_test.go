package node

import (
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
	for _, tc := range []struct {
		name        string
		o           observed
		ready       metav1.ConditionStatus
		readyReason string
	}{
		{"serving", observed{generation: 2, keysOK: true, loaded: []string{"k1"}, active: "k1", stats: camera.Stats{Width: 640, Height: 480, FPS: 14.96, Capturing: capturing, Motion: detecting, LastFrame: now}}, metav1.ConditionTrue, camv1.ReasonSucceeded},
		{"source failing", observed{generation: 2, keysOK: true, stats: camera.Stats{Capturing: camera.Condition{Reason: "DeviceNotFound", Message: "no /dev/video0"}, Motion: detecting}}, metav1.ConditionFalse, "NotCapturing"},
		{"no keys", observed{generation: 2, stats: camera.Stats{Capturing: capturing, Motion: detecting}}, metav1.ConditionFalse, "NoVerificationKeys"},
		{"suspended", observed{generation: 3, suspended: true}, metav1.ConditionFalse, camv1.ReasonSuspended},
	} {
		st := desiredStatus(camv1.CameraStatus{}, tc.o, now)
		r := meta.FindStatusCondition(st.Conditions, camv1.ConditionReady)
		if r == nil || r.Status != tc.ready || r.Reason != tc.readyReason || st.ObservedGeneration != tc.o.generation {
			t.Errorf("%s: Ready %+v, observedGeneration %d", tc.name, r, st.ObservedGeneration)
		}
		if tc.name == "serving" && (st.Resolution != "640x480" || st.FPS != "15.0" || st.EnforcedKeyID != "k1" || st.LastFrameTime == nil) {
			t.Errorf("serving: %+v", st)
		}
		if tc.name == "source failing" {
			if c := meta.FindStatusCondition(st.Conditions, ConditionCapturing); c == nil || c.Reason != "DeviceNotFound" {
				t.Errorf("Capturing %+v", c)
			}
		}
	}
}

func TestWriteDue(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	frame := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	base := camv1.CameraStatus{FPS: "15.0", LastFrameTime: frame(0), LoadedKeyIDs: []string{"k1"}, EnforcedKeyID: "k1",
		Conditions: []metav1.Condition{{Type: camv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded"}}}
	with := func(f func(*camv1.CameraStatus)) camv1.CameraStatus { s := *base.DeepCopy(); f(&s); return s }
	for _, tc := range []struct {
		name  string
		next  camv1.CameraStatus
		since time.Duration
		want  bool
	}{
		{"nothing changed", base, time.Hour, false},
		{"only the last frame moved, recently", with(func(s *camv1.CameraStatus) { s.LastFrameTime = frame(5 * time.Second) }), 5 * time.Second, false},
		{"only the last frame moved, a minute on", with(func(s *camv1.CameraStatus) { s.LastFrameTime = frame(time.Minute) }), time.Minute, true},
		{"a new motion event, 3 s on", with(func(s *camv1.CameraStatus) { s.MotionEvents = 1 }), 3 * time.Second, false},
		{"a new motion event, 10 s on", with(func(s *camv1.CameraStatus) { s.MotionEvents = 1 }), 10 * time.Second, true},
		{"a condition changed", with(func(s *camv1.CameraStatus) { s.Conditions[0].Status = metav1.ConditionFalse }), time.Second, true},
		{"a new key loaded", with(func(s *camv1.CameraStatus) { s.LoadedKeyIDs = []string{"k1", "k2"} }), time.Second, true},
		{"a new generation served", with(func(s *camv1.CameraStatus) { s.ObservedGeneration = 2 }), time.Second, true},
	} {
		if got := writeDue(base, tc.next, t0, t0.Add(tc.since)); got != tc.want {
			t.Errorf("%s: writeDue %v, want %v", tc.name, got, tc.want)
		}
	}
	if !writeDue(camv1.CameraStatus{}, base, time.Time{}, t0) {
		t.Error("the first status is not written")
	}
}

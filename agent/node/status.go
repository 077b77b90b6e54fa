package node

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/camfleet/camfleet/agent/camera"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Condition types the agent owns on a Camera.
const (
	ConditionCapturing       = "Capturing"
	ConditionMotionDetection = "MotionDetection"
)

// Write cadence: a change that matters (a condition, the keys, the spec served) is written at
// once; motion counts at most every eventEvery; frame rate and last frame time, which move
// with every frame, at most every refreshEvery, so a settled fleet costs the API server
// little.
const (
	eventEvery   = 10 * time.Second
	refreshEvery = 60 * time.Second
)

// observed is what the agent knows about one camera when it writes status.
type observed struct {
	generation int64
	endpoint   string
	stats      camera.Stats
	loaded     []string
	active     string
	keysOK     bool
	suspended  bool
}

// desiredStatus is the pure mapping from what the agent observes to the Camera's status
// fields the agent owns.
func desiredStatus(cur camv1.CameraStatus, o observed, now time.Time) camv1.CameraStatus {
	st := *cur.DeepCopy()
	st.Endpoint = o.endpoint
	st.EnforcedKeyID = o.active
	st.LoadedKeyIDs = slices.Clone(o.loaded)
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: o.generation, LastTransitionTime: metav1.NewTime(now)})
	}
	if o.suspended {
		set(camv1.ConditionReady, false, camv1.ReasonSuspended, "spec.suspend is true: capture and serving are stopped")
		set(ConditionCapturing, false, camv1.ReasonSuspended, "suspended")
		meta.RemoveStatusCondition(&st.Conditions, ConditionMotionDetection)
		st.FPS = ""
		st.ObservedGeneration = o.generation
		return st
	}
	s := o.stats
	if s.Width > 0 {
		st.Resolution = fmt.Sprintf("%dx%d", s.Width, s.Height)
	}
	st.FPS = strconv.FormatFloat(s.FPS, 'f', 1, 64)
	if !s.LastFrame.IsZero() {
		t := metav1.NewTime(s.LastFrame.Truncate(time.Second))
		st.LastFrameTime = &t
	}
	if !s.LastMotion.IsZero() {
		t := metav1.NewTime(s.LastMotion.Truncate(time.Second))
		st.LastMotionTime = &t
	}
	st.MotionEvents = s.MotionEvents
	set(ConditionCapturing, s.Capturing.OK, s.Capturing.Reason, s.Capturing.Message)
	set(ConditionMotionDetection, s.Motion.OK, s.Motion.Reason, s.Motion.Message)
	switch {
	case !s.Capturing.OK:
		set(camv1.ConditionReady, false, "NotCapturing", "no frames: "+s.Capturing.Message)
	case !o.keysOK:
		set(camv1.ConditionReady, false, "NoVerificationKeys", "the camera's TokenPolicy has published no keys this agent could load, so every request is refused")
	default:
		set(camv1.ConditionReady, true, camv1.ReasonSucceeded, "capturing and serving behind tokens")
	}
	st.ObservedGeneration = o.generation
	return st
}

// writeDue says whether the new status must be written now, given the last one written and
// when: at once for what matters to people and to key rotation, otherwise rate limited.
func writeDue(last, next camv1.CameraStatus, lastWrite, now time.Time) bool {
	if lastWrite.IsZero() || !sameConditions(last.Conditions, next.Conditions) ||
		!slices.Equal(last.LoadedKeyIDs, next.LoadedKeyIDs) || last.EnforcedKeyID != next.EnforcedKeyID ||
		last.Endpoint != next.Endpoint || last.Resolution != next.Resolution || last.ObservedGeneration != next.ObservedGeneration {
		return true
	}
	since := now.Sub(lastWrite)
	if last.MotionEvents != next.MotionEvents && since >= eventEvery {
		return true
	}
	return since >= refreshEvery && (last.FPS != next.FPS || !timeEqual(last.LastFrameTime, next.LastFrameTime) || !timeEqual(last.LastMotionTime, next.LastMotionTime) || last.MotionEvents != next.MotionEvents)
}

func sameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		o := meta.FindStatusCondition(b, c.Type)
		if o == nil || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message || o.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}

func timeEqual(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

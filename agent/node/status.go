package node

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/camfleet/camfleet/agent/camera"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/camerastatus"
)

// agentConditions are the condition types the agent owns on a Camera; Ready and the
// resolution conditions are the controller's.
var agentConditions = []string{camv1.ConditionCapturing, camv1.ConditionMotionDetection, camv1.ConditionKeysLoaded}

// Write cadence: a change that matters (a condition, the keys, the spec served) is written at
// once; motion counts at most every eventEvery; otherwise the status is written once every
// heartbeatEvery, with the frame rate and last frame time of that moment, so a settled camera
// costs the API server fewer than one write a minute and the controller still notices a silent
// agent (its AgentLost bound, controllers.AgentLostAfter, is longer than heartbeatEvery).
const (
	eventEvery     = 10 * time.Second
	heartbeatEvery = 75 * time.Second
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

// desiredStatus is the pure mapping from what the agent observes to the Camera status fields
// the agent owns, and nothing else: it is applied as the agent's field manager, so a field or
// condition left out here is one the agent gives up. cur is the Camera's stored status, whose
// conditions keep their transition times while their status holds.
func desiredStatus(cur camv1.CameraStatus, o observed, now time.Time) camv1.CameraStatus {
	st := camv1.CameraStatus{Endpoint: o.endpoint, EnforcedKeyID: o.active, LoadedKeyIDs: slices.Clone(o.loaded)}
	for _, t := range agentConditions {
		if c := meta.FindStatusCondition(cur.Conditions, t); c != nil {
			st.Conditions = append(st.Conditions, *c)
		}
	}
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: o.generation, LastTransitionTime: metav1.NewTime(now)})
	}
	if o.suspended {
		// A suspended camera serves nothing: only why it does not capture is worth saying.
		set(camv1.ConditionCapturing, false, camv1.ReasonSuspended, "spec.suspend is true: capture and serving are stopped")
		meta.RemoveStatusCondition(&st.Conditions, camv1.ConditionMotionDetection)
		meta.RemoveStatusCondition(&st.Conditions, camv1.ConditionKeysLoaded)
		return camv1.CameraStatus{Conditions: st.Conditions}
	}
	if o.keysOK {
		set(camv1.ConditionKeysLoaded, true, "Loaded", fmt.Sprintf("%d keys of the camera's TokenPolicy loaded", len(o.loaded)))
	} else {
		set(camv1.ConditionKeysLoaded, false, camv1.ReasonNoVerificationKeys, "the camera's TokenPolicy has published no keys this agent could load, so every request is refused")
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
	set(camv1.ConditionCapturing, s.Capturing.OK, s.Capturing.Reason, s.Capturing.Message)
	set(camv1.ConditionMotionDetection, s.Motion.OK, s.Motion.Reason, s.Motion.Message)
	return st
}

// keyReportDelay and keyReportSpread set when an agent writes a status whose only news is its
// keys. In a fleet-wide rotation every agent loads the new key within a second or two and,
// without a hold, writes all its cameras' statuses at once: at 1000 nodes, 3000 server-side
// applies that took half the API server's CPU in the very seconds the other agents were still
// loading the key (docs/benchmarks.md). So no report comes sooner than keyReportDelay after the
// agent loaded the key, longer than the fan-out of a key to 1000 agents takes on the bench's
// two cores, and each node then waits its own offset in keyReportSpread, so the reports spread
// out. The policy's AGENTS count and a pending key's activation lag by at most the sum;
// enforcement, which needs no report, not at all.
const (
	keyReportDelay  = 3 * time.Second
	keyReportSpread = 8 * time.Second
)

// keyReportOffset is how long a node holds a key report: keyReportDelay and the node's place
// in keyReportSpread, fixed per node name, so a node's reports neither bunch up with the
// others' nor drift from one rotation to the next.
func keyReportOffset(node string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(node))
	return keyReportDelay + time.Duration(h.Sum32()%uint32(keyReportSpread/time.Millisecond))*time.Millisecond
}

// onlyKeysChanged says whether next differs from last in the keys alone: the loaded and
// enforced key IDs and the KeysLoaded condition's message, which counts them.
func onlyKeysChanged(last, next camv1.CameraStatus) bool {
	if sameKeys(last, next) {
		return false
	}
	same := *next.DeepCopy()
	same.LoadedKeyIDs, same.EnforcedKeyID = last.LoadedKeyIDs, last.EnforcedKeyID
	was, now := meta.FindStatusCondition(last.Conditions, camv1.ConditionKeysLoaded), meta.FindStatusCondition(same.Conditions, camv1.ConditionKeysLoaded)
	if was != nil && now != nil && was.Status == now.Status && was.Reason == now.Reason {
		*now = *was
	}
	return camerastatus.SameConditions(last.Conditions, same.Conditions) && last.Endpoint == same.Endpoint && last.Resolution == same.Resolution
}

// sameKeys says whether next reports the keys last did.
func sameKeys(last, next camv1.CameraStatus) bool {
	return slices.Equal(last.LoadedKeyIDs, next.LoadedKeyIDs) && last.EnforcedKeyID == next.EnforcedKeyID
}

// writeDue says whether the new status must be written now, given the last one written and
// when: at once for what matters to people, keys that are the only news once keyHold has
// passed since the agent held them (keysSince; see keyReportOffset), motion counts at most
// every eventEvery, and a heartbeat every heartbeatEvery even when nothing changed.
func writeDue(last, next camv1.CameraStatus, lastWrite, keysSince, now time.Time, keyHold time.Duration) bool {
	if lastWrite.IsZero() {
		return true
	}
	if onlyKeysChanged(last, next) {
		if now.Sub(keysSince) >= keyHold {
			return true
		}
	} else if !sameKeys(last, next) || !camerastatus.SameConditions(last.Conditions, next.Conditions) ||
		last.Endpoint != next.Endpoint || last.Resolution != next.Resolution {
		return true
	}
	since := now.Sub(lastWrite)
	if last.MotionEvents != next.MotionEvents && since >= eventEvery {
		return true
	}
	return since >= heartbeatEvery
}

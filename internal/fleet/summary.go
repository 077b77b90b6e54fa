// Package fleet reads a camfleet fleet's state from its objects for people: a summary of
// every policy's keys and every camera with its problems first, the progress of a requested
// key rotation, and why the strict verifier refused a token. Everything here is a pure
// function of objects and a time, so the kubectl plugin that prints it is tested without a
// cluster for its logic and with one only for its wiring.
package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Bounds that make a camera's frames stale, as the controller's Ready condition judges them
// (docs/agent.md, Status): the agent reports at least every 75 s and is lost after 110 s, and a
// last frame more than 30 s older than the report means the source stopped.
const (
	// HeartbeatLostAfter is how old the agent's last report may be before the camera's frames
	// are no longer known to flow.
	HeartbeatLostAfter = 110 * time.Second
	// FrameGap is how much older than the agent's report its last frame may be.
	FrameGap = 30 * time.Second
)

// Problem is one thing wrong with a policy or a camera: a CamelCase reason (a condition's
// reason where one says it) and a sentence.
type Problem struct {
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// String is "Reason: message", or the reason alone.
func (p Problem) String() string {
	if p.Message == "" {
		return p.Reason
	}
	return p.Reason + ": " + p.Message
}

// Reasons of the problems the summary finds itself, beside those conditions report.
const (
	// ReasonNotReconciled: the object has no Ready condition yet.
	ReasonNotReconciled = "NotReconciled"
	// ReasonStaleFrames: the camera's last frame is older than its agent's report allows.
	ReasonStaleFrames = "StaleFrames"
	// ReasonLaggingKey: the camera's agent has not loaded a key its policy publishes to sign.
	ReasonLaggingKey = "LaggingKey"
	// ReasonNoKeys: the policy has published no key yet.
	ReasonNoKeys = "NoKeys"
)

// Summary is the fleet at one moment: policies and cameras, each list with its problems first.
type Summary struct {
	Time     time.Time       `json:"time"`
	Policies []PolicySummary `json:"policies"`
	Cameras  []CameraSummary `json:"cameras"`
}

// PolicySummary is one TokenPolicy as an operator reads it.
type PolicySummary struct {
	Namespace    string       `json:"namespace"`
	Name         string       `json:"name"`
	Ready        string       `json:"ready"`
	ActiveKeyID  string       `json:"activeKeyID,omitempty"`
	Agents       string       `json:"agents,omitempty"`
	LaggingNodes []string     `json:"laggingNodes,omitempty"`
	LastRotation *time.Time   `json:"lastRotation,omitempty"`
	NextRotation *time.Time   `json:"nextRotation,omitempty"`
	Keys         []KeySummary `json:"keys"`
	Problems     []Problem    `json:"problems,omitempty"`
}

// Key is the policy's namespace/name.
func (p PolicySummary) Key() string { return p.Namespace + "/" + p.Name }

// KeySummary is one published signing key.
type KeySummary struct {
	KeyID     string     `json:"kid"`
	Algorithm string     `json:"algorithm"`
	State     string     `json:"state"`
	Created   time.Time  `json:"created"`
	Activates *time.Time `json:"activates,omitempty"`
	// Next is the key's next step: when the active key is replaced, when a pending key
	// signs, when a retiring key leaves the JWKS.
	Next         *time.Time `json:"next,omitempty"`
	Agents       string     `json:"agents,omitempty"`
	LaggingNodes []string   `json:"laggingNodes,omitempty"`
}

// CameraSummary is one Camera as an operator reads it.
type CameraSummary struct {
	Namespace     string     `json:"namespace"`
	Name          string     `json:"name"`
	Node          string     `json:"node"`
	Source        string     `json:"source"`
	Resolution    string     `json:"resolution,omitempty"`
	FPS           string     `json:"fps,omitempty"`
	LastFrame     *time.Time `json:"lastFrame,omitempty"`
	LastMotion    *time.Time `json:"lastMotion,omitempty"`
	LastHeartbeat *time.Time `json:"lastHeartbeat,omitempty"`
	MotionEvents  int64      `json:"motionEvents"`
	Policy        string     `json:"policy,omitempty"`
	EnforcedKeyID string     `json:"enforcedKeyID,omitempty"`
	Endpoint      string     `json:"endpoint,omitempty"`
	Ready         string     `json:"ready"`
	Suspended     bool       `json:"suspended,omitempty"`
	Problems      []Problem  `json:"problems,omitempty"`
}

// Key is the camera's namespace/name.
func (c CameraSummary) Key() string { return c.Namespace + "/" + c.Name }

// Summarize reads policies and cameras at now. A camera's key is judged against its policy
// (status.tokenPolicy) when that policy is among policies; otherwise only its own status.
func Summarize(policies []camv1.TokenPolicy, cameras []camv1.Camera, now time.Time) Summary {
	s := Summary{Time: now, Policies: []PolicySummary{}, Cameras: []CameraSummary{}}
	byKey := map[string]*camv1.TokenPolicy{}
	for i := range policies {
		p := &policies[i]
		byKey[p.Namespace+"/"+p.Name] = p
		s.Policies = append(s.Policies, SummarizePolicy(p))
	}
	for i := range cameras {
		c := &cameras[i]
		s.Cameras = append(s.Cameras, SummarizeCamera(c, byKey[c.Status.TokenPolicy], now))
	}
	slices.SortStableFunc(s.Policies, func(a, b PolicySummary) int {
		return cmp.Or(cmp.Compare(rank(a.Ready, false, a.Problems), rank(b.Ready, false, b.Problems)), strings.Compare(a.Key(), b.Key()))
	})
	slices.SortStableFunc(s.Cameras, func(a, b CameraSummary) int {
		return cmp.Or(cmp.Compare(rank(a.Ready, a.Suspended, a.Problems), rank(b.Ready, b.Suspended, b.Problems)), strings.Compare(a.Key(), b.Key()))
	})
	return s
}

// rank orders by how much attention an object needs: not Ready first, then Ready with a
// problem (stale frames, a lagging key), then the rest.
func rank(ready string, suspended bool, problems []Problem) int {
	switch {
	case len(problems) == 0:
		return 2
	case ready != string(metav1.ConditionTrue) && !suspended:
		return 0
	}
	return 1
}

// SummarizePolicy reads one policy's keys and problems.
func SummarizePolicy(p *camv1.TokenPolicy) PolicySummary {
	st := p.Status
	out := PolicySummary{
		Namespace: p.Namespace, Name: p.Name, Ready: conditionStatus(st.Conditions, camv1.ConditionReady),
		ActiveKeyID: st.ActiveKeyID, Agents: st.Agents, LastRotation: timeOf(st.LastRotationTime),
		NextRotation: timeOf(st.NextRotationTime), Keys: []KeySummary{},
	}
	for _, k := range st.Keys {
		ks := KeySummary{
			KeyID: k.KeyID, Algorithm: string(k.Algorithm), State: string(k.State), Created: k.Created.Time,
			Activates: timeOf(k.Activates), Agents: k.Agents, LaggingNodes: k.LaggingNodes,
		}
		switch k.State {
		case camv1.KeyActive:
			ks.Next = timeOf(st.NextRotationTime)
			out.LaggingNodes = k.LaggingNodes
		case camv1.KeyPending:
			ks.Next = timeOf(k.Activates)
		case camv1.KeyRetiring:
			ks.Next = timeOf(k.RemoveAfter)
		}
		out.Keys = append(out.Keys, ks)
	}
	// Signing order: the pending key first (the one a rotation is waiting on), then the
	// active one, then the retiring ones, newest first.
	slices.SortStableFunc(out.Keys, func(a, b KeySummary) int {
		return cmp.Or(cmp.Compare(stateOrder(a.State), stateOrder(b.State)), b.Created.Compare(a.Created))
	})
	out.Problems = policyProblems(p)
	return out
}

func stateOrder(s string) int {
	switch camv1.KeyState(s) {
	case camv1.KeyPending:
		return 0
	case camv1.KeyActive:
		return 1
	}
	return 2
}

// policyProblems are the conditions that say something is wrong, Ready first.
func policyProblems(p *camv1.TokenPolicy) []Problem {
	var out []Problem
	ready := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionReady)
	switch {
	case ready == nil:
		out = append(out, Problem{ReasonNotReconciled, "the controller has not reported on this policy yet"})
	case ready.Status != metav1.ConditionTrue:
		out = append(out, Problem{ready.Reason, ready.Message})
	}
	// Abnormal-true and abnormal-false conditions, in a fixed order; each is absent when all
	// is well.
	for _, t := range []string{camv1.ConditionStalled, camv1.ConditionAgentsInSync, camv1.ConditionSessionStoreAvailable, camv1.ConditionExternalIssuersTrusted} {
		c := meta.FindStatusCondition(p.Status.Conditions, t)
		if c == nil {
			continue
		}
		bad := c.Status == metav1.ConditionFalse
		if t == camv1.ConditionStalled {
			bad = c.Status == metav1.ConditionTrue
		}
		if bad && !slices.ContainsFunc(out, func(x Problem) bool { return x.Reason == c.Reason && x.Message == c.Message }) {
			out = append(out, Problem{c.Reason, c.Message})
		}
	}
	if ready != nil && p.Status.ActiveKeyID == "" && len(out) == 0 {
		out = append(out, Problem{ReasonNoKeys, "no key signs for this policy yet"})
	}
	return out
}

// SummarizeCamera reads one camera at now, its keys judged against policy when not nil.
func SummarizeCamera(c *camv1.Camera, policy *camv1.TokenPolicy, now time.Time) CameraSummary {
	st := c.Status
	out := CameraSummary{
		Namespace: c.Namespace, Name: c.Name, Node: c.Spec.NodeName, Source: string(c.Spec.Source.Type),
		Resolution: st.Resolution, FPS: st.FPS, LastFrame: timeOf(st.LastFrameTime), LastMotion: timeOf(st.LastMotionTime),
		LastHeartbeat: timeOf(st.LastHeartbeatTime), MotionEvents: st.MotionEvents, Policy: st.TokenPolicy,
		EnforcedKeyID: st.EnforcedKeyID, Endpoint: st.Endpoint, Ready: conditionStatus(st.Conditions, camv1.ConditionReady),
		Suspended: c.Spec.Suspend,
	}
	if c.Spec.Suspend {
		// A suspended camera serves nothing on purpose: no frame or key is expected of it.
		return out
	}
	ready := meta.FindStatusCondition(st.Conditions, camv1.ConditionReady)
	switch {
	case ready == nil:
		out.Problems = append(out.Problems, Problem{ReasonNotReconciled, "the controller has not reported on this camera yet"})
	case ready.Status != metav1.ConditionTrue:
		out.Problems = append(out.Problems, Problem{ready.Reason, ready.Message})
	}
	explained := ready != nil && ready.Status != metav1.ConditionTrue && (ready.Reason == camv1.ReasonNoFrames || ready.Reason == camv1.ReasonAgentLost)
	if p, ok := staleFrames(st, now); ok && !explained {
		out.Problems = append(out.Problems, p)
	}
	if p, ok := laggingKey(c, policy); ok {
		out.Problems = append(out.Problems, p)
	}
	return out
}

// staleFrames reports frames that stopped, by the controller's own bounds, judged now: the
// status may be newer than the controller's last look.
func staleFrames(st camv1.CameraStatus, now time.Time) (Problem, bool) {
	if st.LastHeartbeatTime == nil {
		return Problem{}, false // no report yet: Ready says WaitingForAgent
	}
	hb := st.LastHeartbeatTime.Time
	if age := now.Sub(hb); age > HeartbeatLostAfter {
		return Problem{ReasonStaleFrames, fmt.Sprintf("the agent last reported %s ago", Ago(age))}, true
	}
	if st.LastFrameTime == nil {
		return Problem{ReasonStaleFrames, "the agent reports no frame yet"}, true
	}
	if gap := hb.Sub(st.LastFrameTime.Time); gap > FrameGap {
		return Problem{ReasonStaleFrames, fmt.Sprintf("the last frame is %s older than the agent's last report", Ago(gap))}, true
	}
	return Problem{}, false
}

// laggingKey reports an agent that has not loaded a key its policy signs with or is about to:
// the active key, and a pending key waiting for the fleet.
func laggingKey(c *camv1.Camera, p *camv1.TokenPolicy) (Problem, bool) {
	if p == nil || len(c.Status.LoadedKeyIDs) == 0 {
		return Problem{}, false // no policy to judge by, or no report: Ready says why
	}
	var missing []string
	for _, k := range p.Status.Keys {
		if (k.State == camv1.KeyActive || k.State == camv1.KeyPending) && !slices.Contains(c.Status.LoadedKeyIDs, k.KeyID) {
			missing = append(missing, fmt.Sprintf("%s key %s", strings.ToLower(string(k.State)), ShortKeyID(k.KeyID)))
		}
	}
	if len(missing) == 0 {
		return Problem{}, false
	}
	return Problem{ReasonLaggingKey, fmt.Sprintf("the agent on %s has not loaded the %s", c.Spec.NodeName, strings.Join(missing, " nor the "))}, true
}

// ShortKeyID is the start of a kid, enough to tell keys apart on one screen (kids are
// 43-character thumbprints).
func ShortKeyID(kid string) string {
	const n = 12
	if len(kid) <= n {
		return kid
	}
	return kid[:n]
}

// ParseAgents reads a key's agents field, "loaded/total".
func ParseAgents(s string) (loaded, total int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	l, err1 := strconv.Atoi(a)
	t, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || l < 0 || t < l {
		return 0, 0, false
	}
	return l, t, true
}

func conditionStatus(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.UTC()
	return &v
}

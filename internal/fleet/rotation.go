package fleet

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Phase is how far a requested rotation has come.
type Phase string

const (
	// PhaseRequested: the annotation is set; the controller has not acted on it yet.
	PhaseRequested Phase = "Requested"
	// PhasePublished: the new key is published and waits for the agents before it signs.
	PhasePublished Phase = "Published"
	// PhaseSigning: the new key signs, but not every agent holds it yet (a revoking
	// rotation, or a key that gave up waiting after maxActivationWait).
	PhaseSigning Phase = "Signing"
	// PhaseDone: the new key signs and every agent serving the policy's cameras holds it.
	PhaseDone Phase = "Done"
	// PhaseSuperseded: another rotation replaced this one before it was done.
	PhaseSuperseded Phase = "Superseded"
)

// Progress is where one policy's requested rotation stands.
type Progress struct {
	Policy string `json:"policy"`
	Phase  Phase  `json:"phase"`
	// KeyID is the key made for the request, once the controller has made it.
	KeyID   string   `json:"kid,omitempty"`
	State   string   `json:"state,omitempty"`
	Loaded  int      `json:"loaded"`
	Total   int      `json:"total"`
	Lagging []string `json:"laggingNodes,omitempty"`
	// Message says what the controller waits for (the AgentsInSync condition), or why the
	// rotation was superseded.
	Message string `json:"message,omitempty"`
}

// Finished reports whether the rotation needs no more waiting: done or superseded.
func (p Progress) Finished() bool { return p.Phase == PhaseDone || p.Phase == PhaseSuperseded }

// RotationProgress says how far the rotation requested with the camfleet.io/rotate value
// request has come on p. kid is the key found for it on an earlier look ("" before): the
// controller marks the request acted on (status.lastRotateRequest) in the same status write
// that publishes its key, so the newest pending or active key at the first look that sees
// the request acted on is the request's key, and later looks follow that key even when
// another one appears after it.
//
// The rotation is done when that key is Active and the agents serving the policy's cameras
// all hold it (its agents field reads N/N; 0/0 when no agent reports for the policy, which
// then has nobody to wait for).
func RotationProgress(p *camv1.TokenPolicy, request, kid string) Progress {
	out := Progress{Policy: p.Namespace + "/" + p.Name, Phase: PhaseRequested}
	st := p.Status
	if st.LastRotateRequest != request {
		if now := p.Annotations[camv1.AnnotationRotate]; now != request {
			out.Phase = PhaseSuperseded
			out.Message = fmt.Sprintf("the annotation %s changed to %q before the controller acted on %q", camv1.AnnotationRotate, now, request)
			return out
		}
		if kid == "" {
			out.Message = "waiting for the controller to act on the request"
			return out
		}
		// The controller acted on ours and then on a newer request.
		out.Phase = PhaseSuperseded
		out.Message = fmt.Sprintf("the controller has since acted on another rotation request, %q", st.LastRotateRequest)
		return out
	}
	var key *camv1.KeyStatus
	for i := range st.Keys {
		k := &st.Keys[i]
		if kid != "" {
			if k.KeyID == kid {
				key = k
			}
			continue
		}
		if (k.State == camv1.KeyPending || k.State == camv1.KeyActive) && (key == nil || k.Created.After(key.Created.Time)) {
			key = k
		}
	}
	if key == nil {
		if kid != "" {
			out.Phase, out.KeyID = PhaseSuperseded, kid
			out.Message = fmt.Sprintf("key %s left the policy (another rotation revoked it)", ShortKeyID(kid))
			return out
		}
		out.Message = "the controller acted on the request but publishes no new key"
		return out
	}
	out.KeyID, out.State = key.KeyID, string(key.State)
	out.Loaded, out.Total, _ = ParseAgents(key.Agents)
	out.Lagging = slices.Clone(key.LaggingNodes)
	switch key.State {
	case camv1.KeyPending:
		out.Phase = PhasePublished
		if key.Agents == "0/0" {
			out.Message = "no agent reports keys for this policy's cameras, so the key signs once it has been published for publishAhead"
		}
	case camv1.KeyActive:
		out.Phase = PhaseSigning
		if out.Loaded == out.Total && key.Agents != "" {
			out.Phase = PhaseDone
		}
	default:
		out.Phase = PhaseSuperseded
		out.Message = fmt.Sprintf("key %s is %s: a newer key replaced it", ShortKeyID(key.KeyID), key.State)
		return out
	}
	if c := meta.FindStatusCondition(st.Conditions, camv1.ConditionAgentsInSync); c != nil && c.Status == metav1.ConditionFalse && out.Phase != PhaseDone {
		out.Message = c.Message
	}
	return out
}

// Line is the progress as one line of plain output.
func (p Progress) Line() string {
	switch p.Phase {
	case PhaseRequested:
		return p.Policy + ": " + p.Message
	case PhaseSuperseded:
		return p.Policy + ": superseded: " + p.Message
	case PhaseDone:
		return fmt.Sprintf("%s: rotated: key %s signs and %d/%d agents hold it", p.Policy, ShortKeyID(p.KeyID), p.Loaded, p.Total)
	}
	s := fmt.Sprintf("%s: key %s %s, %d/%d agents hold it", p.Policy, ShortKeyID(p.KeyID), p.State, p.Loaded, p.Total)
	if len(p.Lagging) > 0 {
		s += ", lagging: " + strings.Join(p.Lagging, ", ")
	}
	return s
}

// Stuck is why an unfinished rotation is not done, naming the nodes that lag, for the error
// a timeout ends with.
func (p Progress) Stuck() string {
	switch p.Phase {
	case PhaseRequested:
		return p.Policy + ": the controller has not acted on the request"
	case PhasePublished, PhaseSigning:
		s := fmt.Sprintf("%s: key %s %s, %d/%d agents", p.Policy, ShortKeyID(p.KeyID), p.State, p.Loaded, p.Total)
		switch {
		case len(p.Lagging) > 0:
			s += ", lagging nodes: " + strings.Join(p.Lagging, ", ")
		case p.Message != "":
			s += " (" + p.Message + ")"
		}
		return s
	}
	return p.Line()
}

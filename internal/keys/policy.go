package keys

import (
	"fmt"
	"strings"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Params are what decide a policy's key lifecycle: its spec, and the rotate annotation.
type Params struct {
	Algorithm         camv1.SigningAlgorithm
	RSABits           int
	Period            time.Duration
	PublishAhead      time.Duration
	MaxActivationWait time.Duration
	// Retention is how long a key stays published after it stops signing: the longest token
	// lifetime plus leeway, so every token it signed verifies until it expires.
	Retention time.Duration
	// RotateRequest is the camfleet.io/rotate annotation's value; a value the set has not
	// acted on asks for an emergency rotation.
	RotateRequest string
	// Revoke, with a new RotateRequest, removes the previous keys from the JWKS at once.
	Revoke bool
}

// Agents is what the agents serving a policy's cameras report about one key.
type Agents struct {
	// Total counts the agents (nodes) that serve cameras under the policy and report keys.
	Total int
	// Lagging names the nodes whose agent has not loaded the key, sorted.
	Lagging []string
}

// Decision is the outcome of one lifecycle check: a CamelCase reason for Events, conditions
// and metrics, and a message for people.
type Decision struct {
	Reason  string
	Message string
}

// Decisions about new keys.
const (
	ReasonEmergencyRotation = "EmergencyRotation"
	ReasonRotationRequested = "RotationRequested"
	ReasonNoActiveKey       = "NoActiveKey"
	ReasonAlgorithmChanged  = "AlgorithmChanged"
	ReasonRotationDue       = "RotationDue"
)

// newKeyCheck is one link of the chain NewKey walks: it says whether a new key is needed now
// and whether it must sign at once (skipping publishAhead).
type newKeyCheck func(set *Set, p Params, now time.Time) (d Decision, needed, immediate bool)

// NewKey decides whether a new key must be generated now, and whether it signs at once. The
// first check that fires wins; the order puts what the user asked for first.
func NewKey(set *Set, p Params, now time.Time) (Decision, bool, bool) {
	for _, check := range []newKeyCheck{rotationRequested, noActiveKey, algorithmChanged, rotationDue} {
		if d, needed, immediate := check(set, p, now); needed {
			return d, true, immediate
		}
	}
	return Decision{}, false, false
}

// rotationRequested acts on a new camfleet.io/rotate value. With revoke it is an emergency:
// the old keys may be in a thief's hands, so the new key signs at once and nothing waits for
// the fleet. Without, the new key is published and signs as soon as every agent holds it (see
// Activation), so no node that has not caught up refuses its tokens.
func rotationRequested(set *Set, p Params, _ time.Time) (Decision, bool, bool) {
	if p.RotateRequest == "" || p.RotateRequest == set.RotateRequest {
		return Decision{}, false, false
	}
	if p.Revoke {
		return Decision{ReasonEmergencyRotation, fmt.Sprintf("rotation requested (%s=%s) with revoke: a new key signs at once; previous keys are removed from the JWKS at once, so their tokens stop working", camv1.AnnotationRotate, safeID(p.RotateRequest))}, true, true
	}
	return Decision{ReasonRotationRequested, fmt.Sprintf("rotation requested (%s=%s): a new key is published and signs once every agent has loaded it, or after %s; previous keys stay published until their tokens expire", camv1.AnnotationRotate, safeID(p.RotateRequest), p.MaxActivationWait)}, true, false
}

// noActiveKey covers a new policy and a Secret that lost its active key. A pending key that
// has been published long enough takes over instead (see Activation); otherwise a new key
// must sign at once, since nothing else can.
func noActiveKey(set *Set, p Params, now time.Time) (Decision, bool, bool) {
	if set.Active() != nil {
		return Decision{}, false, false
	}
	if pk := set.Pending(); pk != nil && pk.Algorithm == p.Algorithm && !pk.Published.IsZero() && !now.Before(pk.Published.Add(p.PublishAhead)) {
		return Decision{}, false, false
	}
	return Decision{ReasonNoActiveKey, "the policy has no signing key: a new key signs at once"}, true, true
}

func algorithmChanged(set *Set, p Params, _ time.Time) (Decision, bool, bool) {
	a := set.Active()
	if a == nil || a.Algorithm == p.Algorithm {
		return Decision{}, false, false
	}
	if pk := set.Pending(); pk != nil && pk.Algorithm == p.Algorithm {
		return Decision{}, false, false
	}
	return Decision{ReasonAlgorithmChanged, fmt.Sprintf("the policy now signs with %s: a new %s key is published and signs after publishAhead", p.Algorithm, p.Algorithm)}, true, false
}

func rotationDue(set *Set, p Params, now time.Time) (Decision, bool, bool) {
	a := set.Active()
	if a == nil || set.Pending() != nil {
		return Decision{}, false, false
	}
	if now.Before(a.Activates.Add(p.Period - p.PublishAhead)) {
		return Decision{}, false, false
	}
	return Decision{ReasonRotationDue, fmt.Sprintf("key %s has signed for most of its %s period: its successor is published now and signs in %s", a.ID, p.Period, p.PublishAhead)}, true, false
}

// Decisions about activating a pending key.
const (
	ReasonNotPublished     = "NotPublished"
	ReasonPublishing       = "PublishAhead"
	ReasonNotDue           = "NotDue"
	ReasonWaitingForAgents = "WaitingForAgents"
	ReasonAgentsLagging    = "AgentsLagging"
	ReasonActivated        = "Activated"
)

// Activation decides whether a pending key signs now. When it may not yet, wake is when to
// look again (zero when only an outside event, such as an agent report, can change the
// answer before the next deadline).
func Activation(pending, active *Key, p Params, agents Agents, now time.Time) (d Decision, ready bool, wake time.Time) {
	if pending.Published.IsZero() {
		return Decision{ReasonNotPublished, fmt.Sprintf("key %s is not published yet", pending.ID)}, false, time.Time{}
	}
	// publishAhead stands in for the agents' reports: a requested key that every reporting
	// agent already holds need not wait for it.
	if !pending.Requested || agents.Total == 0 {
		if published := pending.Published.Add(p.PublishAhead); now.Before(published) {
			return Decision{ReasonPublishing, fmt.Sprintf("key %s is published and signs from %s", pending.ID, published.UTC().Format(time.RFC3339))}, false, published
		}
	}
	if !pending.Requested && active != nil && active.Algorithm == p.Algorithm && pending.Algorithm == p.Algorithm {
		if due := active.Activates.Add(p.Period); now.Before(due) {
			return Decision{ReasonNotDue, fmt.Sprintf("key %s signs from %s", pending.ID, due.UTC().Format(time.RFC3339))}, false, due
		}
	}
	if len(agents.Lagging) > 0 {
		giveUp := pending.Published.Add(p.MaxActivationWait)
		if now.Before(giveUp) {
			return Decision{ReasonWaitingForAgents, fmt.Sprintf("key %s waits for %d of %d agents to load it: %s", pending.ID, len(agents.Lagging), agents.Total, NodeList(agents.Lagging))}, false, giveUp
		}
		return Decision{ReasonAgentsLagging, fmt.Sprintf("key %s signs after waiting %s, although %d of %d agents have not loaded it: %s", pending.ID, p.MaxActivationWait, len(agents.Lagging), agents.Total, NodeList(agents.Lagging))}, true, time.Time{}
	}
	return Decision{ReasonActivated, fmt.Sprintf("key %s now signs", pending.ID)}, true, time.Time{}
}

// NodeList names nodes for a message, at most five of them.
func NodeList(nodes []string) string {
	const most = 5
	if len(nodes) <= most {
		return strings.Join(nodes, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(nodes[:most], ", "), len(nodes)-most)
}

// RemoveAfter is when a retiring key leaves the JWKS.
func RemoveAfter(k *Key, p Params) time.Time {
	if k.State != camv1.KeyRetiring {
		return time.Time{}
	}
	return k.Retires.Add(p.Retention)
}

// NextRotation is when the next key is planned to start signing.
func NextRotation(set *Set, p Params) time.Time {
	if pk := set.Pending(); pk != nil {
		return pk.Activates
	}
	if a := set.Active(); a != nil {
		return a.Activates.Add(p.Period)
	}
	return time.Time{}
}

// NextDeadline is the earliest time the set needs attention without any outside change: a
// successor to publish, a pending key to activate, or a retiring key to remove. Zero when
// nothing is scheduled.
func NextDeadline(set *Set, p Params, agents Agents, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	a, pk := set.Active(), set.Pending()
	switch {
	case pk != nil:
		if _, ready, wake := Activation(pk, a, p, agents, now); ready {
			consider(now)
		} else {
			consider(wake)
		}
	case a != nil:
		consider(a.Activates.Add(p.Period - p.PublishAhead))
	}
	for _, k := range set.Keys {
		consider(RemoveAfter(k, p))
	}
	return next
}

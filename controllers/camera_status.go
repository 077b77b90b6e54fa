package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Bounds on what a Camera's agent reports. Agents heartbeat every 75 s (agent/node); a
// heartbeat older than AgentLostAfter means the agent, or its node, is gone, and is noticed
// within two minutes of the last report. A last frame older than the heartbeat that carried
// it by NoFramesAfter means frames stopped while the agent lived.
const (
	AgentLostAfter = 110 * time.Second
	NoFramesAfter  = 30 * time.Second
)

// cameraFacts is what a reconcile of one Camera found beyond the Camera itself.
type cameraFacts struct {
	// policy is the governing TokenPolicy's key; empty Name when there is none.
	policy      types.NamespacedName
	policyFound bool
	nodeFound   bool
}

// verdict is one link's answer: a condition reason and a message for people.
type verdict struct {
	reason  string
	message string
}

// cameraCheck is one link of the chain that decides a Camera's Ready condition: a non-nil
// verdict makes the camera not Ready for that reason; the first one that fires wins, in the
// order a person would fix things.
type cameraCheck func(cam *camv1.Camera, f cameraFacts, now time.Time) *verdict

var cameraChecks = []cameraCheck{suspended, policyMissing, nodeMissing, agentSilent, agentLost, framesStopped, keysMissing, agentBehind}

func suspended(cam *camv1.Camera, _ cameraFacts, _ time.Time) *verdict {
	if !cam.Spec.Suspend {
		return nil
	}
	return &verdict{camv1.ReasonSuspended, "spec.suspend is true: capture and serving are stopped"}
}

func policyMissing(cam *camv1.Camera, f cameraFacts, _ time.Time) *verdict {
	switch {
	case f.policy.Name == "":
		return &verdict{camv1.ReasonNoPolicy, "spec.tokenPolicyRef is unset and the controller has no default TokenPolicy: set spec.tokenPolicyRef"}
	case !f.policyFound:
		return &verdict{camv1.ReasonPolicyNotFound, fmt.Sprintf("TokenPolicy %s does not exist; the agent refuses every request to this camera", f.policy)}
	}
	return nil
}

func nodeMissing(cam *camv1.Camera, f cameraFacts, _ time.Time) *verdict {
	if f.nodeFound {
		return nil
	}
	return &verdict{camv1.ReasonNodeNotFound, fmt.Sprintf("spec.nodeName: no Node %s exists", cam.Spec.NodeName)}
}

func agentSilent(cam *camv1.Camera, _ cameraFacts, _ time.Time) *verdict {
	if cam.Status.LastHeartbeatTime != nil {
		return nil
	}
	return &verdict{camv1.ReasonWaitingForAgent, fmt.Sprintf("no agent on node %s has reported on this camera yet: is the camfleet agent running there?", cam.Spec.NodeName)}
}

func agentLost(cam *camv1.Camera, _ cameraFacts, now time.Time) *verdict {
	hb := cam.Status.LastHeartbeatTime.Time
	if now.Sub(hb) <= AgentLostAfter {
		return nil
	}
	return &verdict{camv1.ReasonAgentLost, fmt.Sprintf("the agent on node %s last reported at %s, more than %s ago: the agent or its node is down",
		cam.Spec.NodeName, hb.UTC().Format(time.RFC3339), AgentLostAfter)}
}

func framesStopped(cam *camv1.Camera, _ cameraFacts, _ time.Time) *verdict {
	st := cam.Status
	c := meta.FindStatusCondition(st.Conditions, camv1.ConditionCapturing)
	switch {
	case c == nil:
		return &verdict{camv1.ReasonNoFrames, "the agent reports no capture state yet"}
	case c.Status != metav1.ConditionTrue:
		return &verdict{camv1.ReasonNoFrames, "no frames: " + c.Message}
	case st.LastFrameTime == nil:
		return &verdict{camv1.ReasonNoFrames, "the agent has received no frame yet"}
	}
	if gap := st.LastHeartbeatTime.Sub(st.LastFrameTime.Time); gap > NoFramesAfter {
		return &verdict{camv1.ReasonNoFrames, fmt.Sprintf("no frame since %s, although the agent is alive", st.LastFrameTime.UTC().Format(time.RFC3339))}
	}
	return nil
}

func keysMissing(cam *camv1.Camera, _ cameraFacts, _ time.Time) *verdict {
	c := meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionKeysLoaded)
	if c != nil && c.Status == metav1.ConditionTrue {
		return nil
	}
	msg := "the agent reports no verification keys for the camera's policy, so it refuses every request"
	if c != nil {
		msg = c.Message
	}
	return &verdict{camv1.ReasonNoVerificationKeys, msg}
}

func agentBehind(cam *camv1.Camera, _ cameraFacts, _ time.Time) *verdict {
	c := meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionCapturing)
	if c == nil || c.ObservedGeneration >= cam.Generation {
		return nil
	}
	return &verdict{camv1.ReasonProgressing, fmt.Sprintf("the agent on node %s serves generation %d of the spec, not yet %d", cam.Spec.NodeName, c.ObservedGeneration, cam.Generation)}
}

// cameraConditions is the pure mapping from a Camera, what was found about it and the time to
// the conditions the controller owns: PolicyResolved, NodeResolved and Ready.
func cameraConditions(cam *camv1.Camera, f cameraFacts, now time.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, 3)
	if v := policyMissing(cam, f, now); v != nil {
		out = append(out, cond(camv1.ConditionPolicyResolved, metav1.ConditionFalse, v.reason, v.message))
	} else {
		out = append(out, cond(camv1.ConditionPolicyResolved, metav1.ConditionTrue, "Found", "governed by TokenPolicy "+f.policy.String()))
	}
	if v := nodeMissing(cam, f, now); v != nil {
		out = append(out, cond(camv1.ConditionNodeResolved, metav1.ConditionFalse, v.reason, v.message))
	} else {
		out = append(out, cond(camv1.ConditionNodeResolved, metav1.ConditionTrue, "Found", "Node "+cam.Spec.NodeName+" exists"))
	}
	for _, check := range cameraChecks {
		if v := check(cam, f, now); v != nil {
			return append(out, cond(camv1.ConditionReady, metav1.ConditionFalse, v.reason, v.message))
		}
	}
	return append(out, cond(camv1.ConditionReady, metav1.ConditionTrue, camv1.ReasonSucceeded,
		fmt.Sprintf("capturing on node %s and serving behind tokens of %s", cam.Spec.NodeName, f.policy)))
}

// nextCameraDeadline is when the Camera's Ready can change without any write: the moment its
// agent's heartbeat grows too old. Zero when nothing but a write can change it.
func nextCameraDeadline(cam *camv1.Camera, now time.Time) time.Time {
	hb := cam.Status.LastHeartbeatTime
	if hb == nil || cam.Spec.Suspend {
		return time.Time{}
	}
	lost := hb.Add(AgentLostAfter + time.Second)
	if !lost.After(now) {
		return time.Time{}
	}
	return lost
}

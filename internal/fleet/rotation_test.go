package fleet

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// rotating is policy() with the rotate annotation set to "r1" and, when acted, the
// controller's answer: key new-key in state with agents and lagging nodes.
func rotating(acted bool, state camv1.KeyState, agents string, lagging ...string) *camv1.TokenPolicy {
	return policy(func(p *camv1.TokenPolicy) {
		p.Annotations = map[string]string{camv1.AnnotationRotate: "r1"}
		if !acted {
			p.Status.LastRotateRequest = "r0"
			return
		}
		p.Status.LastRotateRequest = "r1"
		for i := range p.Status.Keys {
			if p.Status.Keys[i].State == camv1.KeyActive && state == camv1.KeyActive {
				p.Status.Keys[i].State, p.Status.Keys[i].Agents = camv1.KeyRetiring, ""
			}
		}
		p.Status.Keys = append(p.Status.Keys, camv1.KeyStatus{KeyID: "new-key", State: state, Created: *at(-time.Second), Agents: agents, LaggingNodes: lagging})
		if len(lagging) > 0 {
			p.Status.Conditions = append(p.Status.Conditions, cond(camv1.ConditionAgentsInSync, metav1.ConditionFalse, "WaitingForAgents", "key new-key waits for pi-b"))
		}
	})
}

func TestRotationProgress(t *testing.T) {
	cases := []struct {
		name    string
		p       *camv1.TokenPolicy
		kid     string
		phase   Phase
		key     string
		loaded  int
		total   int
		lagging []string
		message string
	}{
		{"the controller has not acted", rotating(false, "", ""), "", PhaseRequested, "", 0, 0, nil, "waiting for the controller"},
		{"a published key waits for an agent", rotating(true, camv1.KeyPending, "1/2", "pi-b"), "", PhasePublished, "new-key", 1, 2, []string{"pi-b"}, "waits for pi-b"},
		{"a published key with no agent reporting", rotating(true, camv1.KeyPending, "0/0"), "", PhasePublished, "new-key", 0, 0, nil, "publishAhead"},
		{"a revoking rotation signs before the agents hold it", rotating(true, camv1.KeyActive, "1/2", "pi-b"), "", PhaseSigning, "new-key", 1, 2, []string{"pi-b"}, "waits for pi-b"},
		{"done: signing and held everywhere", rotating(true, camv1.KeyActive, "2/2"), "", PhaseDone, "new-key", 2, 2, nil, ""},
		{"done with nobody to wait for", rotating(true, camv1.KeyActive, "0/0"), "", PhaseDone, "new-key", 0, 0, nil, ""},
		{"the key found earlier is followed", rotating(true, camv1.KeyActive, "2/2"), "active-key", PhaseSuperseded, "active-key", 0, 0, nil, "Retiring"},
		{"another value replaced ours before the controller acted", policy(func(p *camv1.TokenPolicy) {
			p.Annotations = map[string]string{camv1.AnnotationRotate: "r2"}
		}), "", PhaseSuperseded, "", 0, 0, nil, `changed to "r2"`},
		{"the controller acted on ours, then on another", policy(func(p *camv1.TokenPolicy) {
			p.Annotations = map[string]string{camv1.AnnotationRotate: "r1"}
			p.Status.LastRotateRequest = "r2"
		}), "new-key", PhaseSuperseded, "", 0, 0, nil, `"r2"`},
		{"our key was revoked by a later rotation", rotating(true, camv1.KeyActive, "2/2"), "gone-key", PhaseSuperseded, "gone-key", 0, 0, nil, "left the policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := RotationProgress(tc.p, "r1", tc.kid)
			if got.Phase != tc.phase || got.KeyID != tc.key || got.Loaded != tc.loaded || got.Total != tc.total ||
				!slices.Equal(got.Lagging, tc.lagging) || !strings.Contains(got.Message, tc.message) {
				t.Errorf("got %+v; want phase %s, key %q, %d/%d, lagging %v, message containing %q", got, tc.phase, tc.key, tc.loaded, tc.total, tc.lagging, tc.message)
			}
			if got.Finished() != (tc.phase == PhaseDone || tc.phase == PhaseSuperseded) {
				t.Errorf("Finished() = %v in phase %s", got.Finished(), got.Phase)
			}
		})
	}
}

func TestRotationLines(t *testing.T) {
	cases := []struct {
		p           Progress
		line, stuck string
	}{
		{Progress{Policy: "cams/home", Phase: PhaseRequested, Message: "waiting for the controller to act on the request"},
			"cams/home: waiting for the controller to act on the request", "cams/home: the controller has not acted on the request"},
		{Progress{Policy: "cams/home", Phase: PhasePublished, KeyID: "new-key", State: "Pending", Loaded: 1, Total: 3, Lagging: []string{"pi-b", "pi-c"}},
			"cams/home: key new-key Pending, 1/3 agents hold it, lagging: pi-b, pi-c", "cams/home: key new-key Pending, 1/3 agents, lagging nodes: pi-b, pi-c"},
		{Progress{Policy: "cams/home", Phase: PhasePublished, KeyID: "new-key", State: "Pending", Message: "no agent reports"},
			"cams/home: key new-key Pending, 0/0 agents hold it", "cams/home: key new-key Pending, 0/0 agents (no agent reports)"},
		{Progress{Policy: "cams/home", Phase: PhaseDone, KeyID: "new-key", State: "Active", Loaded: 2, Total: 2},
			"cams/home: rotated: key new-key signs and 2/2 agents hold it", "cams/home: rotated: key new-key signs and 2/2 agents hold it"},
		{Progress{Policy: "cams/home", Phase: PhaseSuperseded, Message: "changed"}, "cams/home: superseded: changed", "cams/home: superseded: changed"},
	}
	for _, tc := range cases {
		if got := tc.p.Line(); got != tc.line {
			t.Errorf("Line() = %q, want %q", got, tc.line)
		}
		if got := tc.p.Stuck(); got != tc.stuck {
			t.Errorf("Stuck() = %q, want %q", got, tc.stuck)
		}
	}
}

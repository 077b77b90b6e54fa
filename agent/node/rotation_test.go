package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// TestRotationWaitsForEveryAgent: the controller and two agents on pi-a and pi-b. A requested
// rotation's key signs only once both agents report it; with pi-b's agent stopped, the next
// one waits for maxActivationWait, naming pi-b while it waits and after it gives up; pi-b's
// agent restarted catches up and the condition clears.
func TestRotationWaitsForEveryAgent(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startController(t, ns)
	// Longer than any node's hold on a key report, so that both agents can report in time.
	const maxWait = keyReportDelay + keyReportSpread + 4*time.Second
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"},
		Rotation: camv1.RotationSpec{PublishAhead: &metav1.Duration{}, MaxActivationWait: &metav1.Duration{Duration: maxWait}}}}
	p.Namespace, p.Name = ns, "home"
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	env.Nodes(t, "pi-a", "pi-b")
	for _, c := range []*camv1.Camera{testCamera(ns, "cam-a", "pi-a"), testCamera(ns, "cam-b", "pi-b")} {
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	stateB := t.TempDir()
	startAgent(t, ns, "pi-a")
	b := startAgentWith(t, ns, "pi-b", Options{StateDir: stateB})

	policy := func() *camv1.TokenPolicy {
		got := &camv1.TokenPolicy{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "home"}, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	loaded := func(cam string) []string {
		c := &camv1.Camera{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: cam}, c); err != nil {
			t.Fatal(err)
		}
		return c.Status.LoadedKeyIDs
	}
	keyStatus := func(pol *camv1.TokenPolicy, kid string) camv1.KeyStatus {
		for _, k := range pol.Status.Keys {
			if k.KeyID == kid {
				return k
			}
		}
		return camv1.KeyStatus{}
	}
	testkit.Eventually(t, settle, "both agents on the first key", func() (bool, string) {
		pol := policy()
		return pol.Status.ActiveKeyID != "" && pol.Status.Agents == "2/2", fmt.Sprintf("active %q, agents %q", pol.Status.ActiveKeyID, pol.Status.Agents)
	})

	// Both agents up: the new key signs only once both report it.
	first := policy().Status.ActiveKeyID
	annotate(t, ns, camv1.AnnotationRotate, "both-up")
	testkit.Eventually(t, settle, "the requested key to sign", func() (bool, string) {
		return policy().Status.ActiveKeyID != first, "still " + first
	})
	second := policy().Status.ActiveKeyID
	for _, cam := range []string{"cam-a", "cam-b"} {
		if !slices.Contains(loaded(cam), second) {
			t.Errorf("key %s signs, but %s's agent reports only %v", second, cam, loaded(cam))
		}
	}

	// pi-b goes down: the next key waits for it until maxActivationWait, naming it.
	b.stop()
	annotate(t, ns, camv1.AnnotationRotate, "pi-b-down")
	var third string
	testkit.Eventually(t, settle, "a pending key waiting for pi-b", func() (bool, string) {
		pol := policy()
		for _, k := range pol.Status.Keys {
			if k.State == camv1.KeyPending {
				third = k.KeyID
			}
		}
		c := meta.FindStatusCondition(pol.Status.Conditions, camv1.ConditionAgentsInSync)
		ks := keyStatus(pol, third)
		return third != "" && ks.Agents == "1/2" && slices.Equal(ks.LaggingNodes, []string{"pi-b"}) && c != nil && c.Reason == "WaitingForAgents" && strings.Contains(c.Message, "pi-b"),
			fmt.Sprintf("keys %+v, AgentsInSync %+v", pol.Status.Keys, c)
	})
	if got := policy().Status.ActiveKeyID; got != second {
		t.Fatalf("key %s signs before maxActivationWait although pi-b lags", got)
	}
	testkit.Eventually(t, 3*maxWait, "the pending key to sign after maxActivationWait", func() (bool, string) {
		return policy().Status.ActiveKeyID == third, "still " + policy().Status.ActiveKeyID
	})
	pol := policy()
	ks := keyStatus(pol, third)
	if waited := ks.Activates.Sub(ks.Created.Time); waited < maxWait-time.Second {
		t.Errorf("key %s signed %s after it was made, before maxActivationWait %s", third, waited, maxWait)
	}
	c := meta.FindStatusCondition(pol.Status.Conditions, camv1.ConditionAgentsInSync)
	if c == nil || c.Reason != "AgentsLagging" || !strings.Contains(c.Message, "pi-b") || pol.Status.Agents != "1/2" {
		t.Errorf("after giving up on pi-b: agents %q, AgentsInSync %+v", pol.Status.Agents, c)
	}

	testkit.Eventually(t, settle, "a Warning Event naming pi-b", func() (bool, string) {
		var evs eventsv1.EventList
		if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Type == "Warning" && e.Reason == "KeyActivated" && strings.Contains(e.Note, "pi-b") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("none among %d Events", len(evs.Items))
	})

	// pi-b comes back with its state directory: it loads the key and the condition clears.
	startAgentWith(t, ns, "pi-b", Options{StateDir: stateB})
	testkit.Eventually(t, settle, "pi-b catching up", func() (bool, string) {
		pol := policy()
		c := meta.FindStatusCondition(pol.Status.Conditions, camv1.ConditionAgentsInSync)
		return c == nil && pol.Status.Agents == "2/2" && slices.Contains(loaded("cam-b"), third), fmt.Sprintf("agents %q, AgentsInSync %+v", pol.Status.Agents, c)
	})
}

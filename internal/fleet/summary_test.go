package fleet

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

var now = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time {
	t := metav1.NewTime(now.Add(d))
	return &t
}

func cond(t string, s metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
}

// policy is a settled policy "home" in cams with an active key "active-key" held by 2/2 agents.
func policy(mutate ...func(*camv1.TokenPolicy)) *camv1.TokenPolicy {
	p := &camv1.TokenPolicy{Status: camv1.TokenPolicyStatus{
		Conditions:  []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionTrue, "Succeeded", "keys published")},
		ActiveKeyID: "active-key", Agents: "2/2", LastRotationTime: at(-time.Hour), NextRotationTime: at(719 * time.Hour),
		Keys: []camv1.KeyStatus{
			{KeyID: "old-key", State: camv1.KeyRetiring, Created: *at(-800 * time.Hour), RemoveAfter: at(24 * time.Hour)},
			{KeyID: "active-key", State: camv1.KeyActive, Created: *at(-2 * time.Hour), Activates: at(-time.Hour), Agents: "2/2"},
		},
	}}
	p.Namespace, p.Name = "cams", "home"
	for _, m := range mutate {
		m(p)
	}
	return p
}

// camera is a Ready camera "porch" on pi-a under cams/home, fresh, holding active-key.
func camera(mutate ...func(*camv1.Camera)) *camv1.Camera {
	c := &camv1.Camera{
		Spec: camv1.CameraSpec{NodeName: "pi-a", Source: camv1.CameraSource{Type: camv1.SourceTestPattern}},
		Status: camv1.CameraStatus{
			Conditions:  []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionTrue, "Succeeded", "serving")},
			TokenPolicy: "cams/home", FPS: "14.9", LastHeartbeatTime: at(-20 * time.Second), LastFrameTime: at(-20 * time.Second),
			LastMotionTime: at(-5 * time.Minute), LoadedKeyIDs: []string{"active-key", "old-key"}, EnforcedKeyID: "active-key",
		},
	}
	c.Namespace, c.Name = "cams", "porch"
	for _, m := range mutate {
		m(c)
	}
	return c
}

func reasons(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Reason)
	}
	return out
}

func TestCameraProblems(t *testing.T) {
	cases := []struct {
		name   string
		cam    *camv1.Camera
		policy *camv1.TokenPolicy
		want   []string
	}{
		{"a settled camera has none", camera(), policy(), nil},
		{"no Ready condition yet", camera(func(c *camv1.Camera) { c.Status.Conditions = nil }), policy(), []string{ReasonNotReconciled}},
		{"the controller's reason comes first", camera(func(c *camv1.Camera) {
			c.Status.Conditions = []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonWaitingForAgent, "no agent has reported")}
			c.Status.LastHeartbeatTime, c.Status.LastFrameTime, c.Status.LoadedKeyIDs = nil, nil, nil
		}), policy(), []string{camv1.ReasonWaitingForAgent}},
		{"a lost agent is not reported twice as stale frames", camera(func(c *camv1.Camera) {
			c.Status.Conditions = []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonAgentLost, "heartbeat 3m old")}
			c.Status.LastHeartbeatTime, c.Status.LastFrameTime = at(-3*time.Minute), at(-3*time.Minute)
		}), policy(), []string{camv1.ReasonAgentLost}},
		{"frames stopped before the controller noticed", camera(func(c *camv1.Camera) { c.Status.LastFrameTime = at(-20*time.Second - FrameGap - time.Second) }), policy(), []string{ReasonStaleFrames}},
		{"an old heartbeat the controller has not judged yet", camera(func(c *camv1.Camera) {
			c.Status.LastHeartbeatTime, c.Status.LastFrameTime = at(-HeartbeatLostAfter-time.Second), at(-HeartbeatLostAfter-time.Second)
		}), policy(), []string{ReasonStaleFrames}},
		{"a report without frames", camera(func(c *camv1.Camera) { c.Status.LastFrameTime = nil }), policy(), []string{ReasonStaleFrames}},
		{"an agent without the active key", camera(func(c *camv1.Camera) { c.Status.LoadedKeyIDs = []string{"old-key"} }), policy(), []string{ReasonLaggingKey}},
		{"an agent without the pending key", camera(), policy(func(p *camv1.TokenPolicy) {
			p.Status.Keys = append(p.Status.Keys, camv1.KeyStatus{KeyID: "new-key", State: camv1.KeyPending, Created: *at(-time.Minute), Agents: "1/2", LaggingNodes: []string{"pi-a"}})
		}), []string{ReasonLaggingKey}},
		{"keys are not judged without the policy", camera(func(c *camv1.Camera) { c.Status.LoadedKeyIDs = []string{"old-key"} }), nil, nil},
		{"a suspended camera owes nothing", camera(func(c *camv1.Camera) {
			c.Spec.Suspend = true
			c.Status.Conditions = []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonSuspended, "suspended")}
			c.Status.LastFrameTime = nil
		}), policy(), nil},
		{"several at once", camera(func(c *camv1.Camera) {
			c.Status.Conditions = []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonNoVerificationKeys, "no keys")}
			c.Status.LastFrameTime = at(-time.Hour)
			c.Status.LoadedKeyIDs = []string{"old-key"}
		}), policy(), []string{camv1.ReasonNoVerificationKeys, ReasonStaleFrames, ReasonLaggingKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SummarizeCamera(tc.cam, tc.policy, now)
			if !slices.Equal(reasons(got.Problems), tc.want) {
				t.Errorf("problems %+v, want reasons %v", got.Problems, tc.want)
			}
		})
	}
}

func TestLaggingKeyNamesNodeAndKeys(t *testing.T) {
	got := SummarizeCamera(camera(func(c *camv1.Camera) { c.Status.LoadedKeyIDs = []string{"old-key"} }), policy(func(p *camv1.TokenPolicy) {
		p.Status.Keys = append(p.Status.Keys, camv1.KeyStatus{KeyID: "new-key", State: camv1.KeyPending, Created: *at(-time.Minute)})
	}), now)
	want := "LaggingKey: the agent on pi-a has not loaded the active key active-key nor the pending key new-key"
	if len(got.Problems) != 1 || got.Problems[0].String() != want {
		t.Errorf("got %+v, want %q", got.Problems, want)
	}
}

func TestPolicyProblems(t *testing.T) {
	cases := []struct {
		name string
		p    *camv1.TokenPolicy
		want []string
	}{
		{"settled", policy(), nil},
		{"not reconciled", policy(func(p *camv1.TokenPolicy) { p.Status = camv1.TokenPolicyStatus{} }), []string{ReasonNotReconciled}},
		{"agents lag", policy(func(p *camv1.TokenPolicy) {
			p.Status.Conditions = append(p.Status.Conditions, cond(camv1.ConditionAgentsInSync, metav1.ConditionFalse, "WaitingForAgents", "key x waits for 1 of 2 agents to load it: pi-b"))
		}), []string{"WaitingForAgents"}},
		{"stalled, once though Ready says the same", policy(func(p *camv1.TokenPolicy) {
			p.Status.Conditions = []metav1.Condition{
				cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonInvalidSpec, "bad"),
				cond(camv1.ConditionStalled, metav1.ConditionTrue, camv1.ReasonInvalidSpec, "bad"),
			}
		}), []string{camv1.ReasonInvalidSpec}},
		{"a foreign session store", policy(func(p *camv1.TokenPolicy) {
			p.Status.Conditions = append(p.Status.Conditions, cond(camv1.ConditionSessionStoreAvailable, metav1.ConditionFalse, camv1.ReasonForeignConfigMap, "delete it"))
		}), []string{camv1.ReasonForeignConfigMap}},
		{"ready without a key", policy(func(p *camv1.TokenPolicy) { p.Status.ActiveKeyID = "" }), []string{ReasonNoKeys}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SummarizePolicy(tc.p); !slices.Equal(reasons(got.Problems), tc.want) {
				t.Errorf("problems %+v, want reasons %v", got.Problems, tc.want)
			}
		})
	}
}

func TestPolicyKeysInSigningOrderWithTheirNextStep(t *testing.T) {
	p := policy(func(p *camv1.TokenPolicy) {
		p.Status.Keys = append(p.Status.Keys, camv1.KeyStatus{KeyID: "new-key", State: camv1.KeyPending, Created: *at(-time.Minute), Activates: at(9 * time.Minute), Agents: "1/2", LaggingNodes: []string{"pi-b"}})
	})
	got := SummarizePolicy(p)
	var order []string
	for _, k := range got.Keys {
		order = append(order, k.KeyID)
	}
	if !slices.Equal(order, []string{"new-key", "active-key", "old-key"}) {
		t.Fatalf("key order %v", order)
	}
	if !got.Keys[0].Next.Equal(now.Add(9*time.Minute)) || !got.Keys[1].Next.Equal(now.Add(719*time.Hour)) || !got.Keys[2].Next.Equal(now.Add(24*time.Hour)) {
		t.Errorf("next steps %v %v %v", got.Keys[0].Next, got.Keys[1].Next, got.Keys[2].Next)
	}
}

func TestSummaryPutsProblemsFirst(t *testing.T) {
	ok := *camera(func(c *camv1.Camera) { c.Name = "a-fine" })
	bad := *camera(func(c *camv1.Camera) { c.Name = "z-stale"; c.Status.LastFrameTime = at(-time.Hour) })
	other := *policy(func(p *camv1.TokenPolicy) { p.Name = "a-settled" })
	lagging := *policy(func(p *camv1.TokenPolicy) {
		p.Name = "z-lagging"
		p.Status.Conditions = append(p.Status.Conditions, cond(camv1.ConditionAgentsInSync, metav1.ConditionFalse, "AgentsLagging", "pi-b"))
	})
	s := Summarize([]camv1.TokenPolicy{other, lagging}, []camv1.Camera{ok, bad}, now)
	if s.Policies[0].Name != "z-lagging" || s.Policies[1].Name != "a-settled" {
		t.Errorf("policies in order %s, %s", s.Policies[0].Name, s.Policies[1].Name)
	}
	if s.Cameras[0].Name != "z-stale" || s.Cameras[1].Name != "a-fine" {
		t.Errorf("cameras in order %s, %s", s.Cameras[0].Name, s.Cameras[1].Name)
	}
}

func TestParseAgents(t *testing.T) {
	cases := []struct {
		in          string
		loaded, all int
		ok          bool
	}{
		{"2/3", 2, 3, true}, {"0/0", 0, 0, true}, {"3/3", 3, 3, true},
		{"", 0, 0, false}, {"3", 0, 0, false}, {"4/3", 0, 0, false}, {"a/3", 0, 0, false}, {"-1/3", 0, 0, false},
	}
	for _, tc := range cases {
		l, a, ok := ParseAgents(tc.in)
		if l != tc.loaded || a != tc.all || ok != tc.ok {
			t.Errorf("ParseAgents(%q) = %d, %d, %v; want %d, %d, %v", tc.in, l, a, ok, tc.loaded, tc.all, tc.ok)
		}
	}
}

package fleet

import (
	"bytes"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func fixtureSummary() Summary {
	home := *policy(func(p *camv1.TokenPolicy) {
		p.Status.Keys = append(p.Status.Keys, camv1.KeyStatus{KeyID: "new-key-0123456789", State: camv1.KeyPending, Created: *at(-2 * time.Minute), Activates: at(-time.Minute), Agents: "1/2", LaggingNodes: []string{"pi-b"}})
		p.Status.Conditions = append(p.Status.Conditions, cond(camv1.ConditionAgentsInSync, metav1.ConditionFalse, "WaitingForAgents", "key new-key-0123456789 waits for 1 of 2 agents to load it: pi-b"))
	})
	garden := *policy(func(p *camv1.TokenPolicy) { p.Namespace, p.Name = "garden", "yard" })
	porch := *camera()
	shed := *camera(func(c *camv1.Camera) {
		c.Name, c.Spec.NodeName = "shed", "pi-b"
		c.Status.Conditions = []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonAgentLost, "the agent last reported 3m ago")}
		c.Status.LastHeartbeatTime, c.Status.LastFrameTime, c.Status.FPS = at(-3*time.Minute), at(-3*time.Minute), "15.0"
	})
	return Summarize([]camv1.TokenPolicy{home, garden}, []camv1.Camera{porch, shed}, now)
}

func TestWriteStatusInOneNamespace(t *testing.T) {
	var b bytes.Buffer
	if err := WriteStatus(&b, fixtureSummary(), View{Namespace: "cams"}); err != nil {
		t.Fatal(err)
	}
	want := `POLICY       READY  ACTIVE KEY  AGENTS  LAGGING  LAST ROTATION  NEXT ROTATION  PROBLEM
home         True   active-key  2/2     -        60m ago        in 29d         WaitingForAgents: key new-key-0123456789 waits for 1 of 2 agents to load it: pi-b
garden/yard  True   active-key  2/2     -        60m ago        in 29d

POLICY       KEY           STATE     AGE   NEXT                       AGENTS  LAGGING
home         new-key-0123  Pending   2m    signs when agents load it  1/2     pi-b
home         active-key    Active    120m  replaced in 29d            2/2     -
home         old-key       Retiring  33d   removed in 24h             -       -
garden/yard  active-key    Active    120m  replaced in 29d            2/2     -
garden/yard  old-key       Retiring  33d   removed in 24h             -       -

CAMERA  NODE  SOURCE       FPS   LAST FRAME  LAST MOTION  READY  PROBLEM
shed    pi-b  TestPattern  15.0  3m ago      5m ago       False  AgentLost: the agent last reported 3m ago; LaggingKey: the agent on pi-b has not loaded the pending key new-key-0123
porch   pi-a  TestPattern  14.9  20s ago     5m ago       True   LaggingKey: the agent on pi-a has not loaded the pending key new-key-0123
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteStatusAcrossNamespaces(t *testing.T) {
	var b bytes.Buffer
	if err := WriteStatus(&b, fixtureSummary(), View{AllNamespaces: true}); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(b.Bytes(), []byte("\n"))
	for _, want := range []string{
		"NAMESPACE  POLICY  READY  ACTIVE KEY",
		"cams       home    True   active-key",
		"garden     yard    True   active-key",
		"NAMESPACE  CAMERA  NODE  SOURCE",
		"cams       shed    pi-b  TestPattern",
	} {
		found := false
		for _, l := range lines {
			found = found || bytes.HasPrefix(l, []byte(want))
		}
		if !found {
			t.Errorf("no line starts with %q in:\n%s", want, b.String())
		}
	}
}

func TestWriteStatusOfAnEmptyFleet(t *testing.T) {
	var b bytes.Buffer
	if err := WriteStatus(&b, Summarize(nil, nil, now), View{Namespace: "cams"}); err != nil {
		t.Fatal(err)
	}
	if want := "No token policies.\n\nNo cameras.\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestWhen(t *testing.T) {
	cases := []struct {
		t    *time.Time
		want string
	}{
		{nil, "-"},
		{ptrTime(now.Add(-90 * time.Second)), "90s ago"},
		{ptrTime(now.Add(3 * time.Hour)), "in 3h"},
		{ptrTime(now), "0s ago"},
	}
	for _, tc := range cases {
		if got := When(tc.t, now); got != tc.want {
			t.Errorf("When(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

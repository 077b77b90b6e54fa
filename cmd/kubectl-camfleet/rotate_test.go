package main

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/fleet"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
)

// twoAgents: porch on a and shed on b, both served.
var twoAgents = fleetOptions{Cameras: map[string]string{"porch": "a", "shed": "b"}, Agents: []string{"a", "b"}}

// TestRotateWaitFollowsTheAgentsToTheNewKey: rotate --wait on a pipe prints a line per change
// and succeeds once the new key signs and both agents hold it; the policy then signs with
// that key. With --revoke, the previous keys leave the published set.
func TestRotateWaitFollowsTheAgentsToTheNewKey(t *testing.T) {
	f := newFleet(t, twoAgents)
	first := f.policy(t).Status.ActiveKeyID

	r := plugin(t, f.ns, "", "rotate", "home", "--wait", "--timeout", "60s")
	wantOK(t, r)
	p := f.policy(t)
	second := p.Status.ActiveKeyID
	if second == first {
		t.Fatalf("the active key is still %s after %s", first, r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !regexp.MustCompile(`^tokenpolicy ` + f.ns + `/home: rotation requested \(camfleet.io/rotate=\d{8}T\d{6}\.\d{6}Z\)$`).MatchString(lines[0]) {
		t.Errorf("first line %q", lines[0])
	}
	if want := f.ns + "/home: rotated: key " + fleet.ShortKeyID(second) + " signs and 2/2 agents hold it"; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q\n%s", lines[len(lines)-1], want, r.stdout)
	}
	if p.Status.LastRotateRequest == "" || !strings.Contains(lines[0], p.Status.LastRotateRequest) {
		t.Errorf("the controller acted on %q, the plugin asked for %s", p.Status.LastRotateRequest, lines[0])
	}
	if _, ok := p.Annotations[camv1.AnnotationRotateRevoke]; ok {
		t.Errorf("a rotation without --revoke left %s on the policy", camv1.AnnotationRotateRevoke)
	}

	// A revoking rotation: the earlier keys leave the JWKS at once.
	r = plugin(t, f.ns, "", "rotate", f.ns+"/home", "--revoke", "--wait", "--timeout", "60s")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "revoking the previous keys") || !strings.Contains(r.stdout, "2/2 agents hold it") {
		t.Errorf("rotate --revoke:\n%s", r.stdout)
	}
	p = f.policy(t)
	pub, _, err := publication.FromStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.ParseJWKS(pub.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range ks.Keys() {
		kids = append(kids, k.KeyID)
	}
	if slices.Contains(kids, first) || slices.Contains(kids, second) || !slices.Equal(kids, []string{p.Status.ActiveKeyID}) {
		t.Errorf("after a revoking rotation the JWKS holds %v; the earlier keys were %s and %s", kids, first, second)
	}
	if p.Annotations[camv1.AnnotationRotateRevoke] != "true" {
		t.Errorf("annotations %v", p.Annotations)
	}

	// Without --wait the request is all: one line, and the next rotation clears the revoke.
	r = plugin(t, f.ns, "", "rotate", "--all")
	wantOK(t, r)
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "rotation requested") {
		t.Errorf("rotate --all:\n%s", r.stdout)
	}
	if _, ok := f.policy(t).Annotations[camv1.AnnotationRotateRevoke]; ok {
		t.Errorf("a rotation without --revoke left the earlier revoke in place")
	}
}

// TestRotateWaitDrawsABarOnATerminal runs the plugin under script(1), which gives it a
// terminal: the progress is one line redrawn in place, then the outcome.
func TestRotateWaitDrawsABarOnATerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed: no terminal to test the bar on")
	}
	f := newFleet(t, twoAgents)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	line := strings.Join([]string{bin, "--kubeconfig", env.Kubeconfig, "-n", f.ns, "rotate", "home", "--wait", "--timeout", "60s"}, " ")
	cmd := exec.CommandContext(ctx, script, "-qec", line, "/dev/null")
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%q", err, out.String())
	}
	s := out.String()
	t.Logf("on the terminal: %q", s)
	if !strings.Contains(s, "\r") || !strings.Contains(s, "|") || !strings.Contains(s, "2/2 agents hold it") || !strings.Contains(s, "rotated: key") {
		t.Errorf("no progress bar on the terminal:\n%q", s)
	}
}

// TestRotateWaitTimesOutNamingTheLaggingNodes: with b's agent down, the new key waits for it
// (maxActivationWait is an hour), and rotate --wait gives up after its timeout, naming b.
func TestRotateWaitTimesOutNamingTheLaggingNodes(t *testing.T) {
	f := newFleet(t, twoAgents)
	first := f.policy(t).Status.ActiveKeyID
	f.agents["b"].stop()

	// Longer than the agents' hold on key reports, at most 11 s (agent/node keyReportOffset),
	// so that a's report is in before the wait gives up.
	start := time.Now()
	r := plugin(t, f.ns, "", "rotate", "home", "--wait", "--timeout", "16s")
	took := time.Since(start)
	p := f.policy(t)
	var pending string
	for _, k := range p.Status.Keys {
		if k.State == camv1.KeyPending {
			pending = k.KeyID
		}
	}
	if pending == "" || p.Status.ActiveKeyID != first {
		t.Fatalf("want a pending key waiting for %s and %s still active; keys %+v", f.nodes["b"], first, p.Status.Keys)
	}
	want := "timed out after 16s waiting for the rotation: " + f.ns + "/home: key " + fleet.ShortKeyID(pending) + " Pending, 1/2 agents, lagging nodes: " + f.nodes["b"]
	wantError(t, r, exitFailure, want)
	if took > 30*time.Second {
		t.Errorf("the 16s timeout took %s", took)
	}
	if !strings.Contains(r.stdout, "1/2 agents hold it, lagging: "+f.nodes["b"]) {
		t.Errorf("no progress line naming the lagging node:\n%s", r.stdout)
	}
}

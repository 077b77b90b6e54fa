package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/fleet"
)

// TestStatusShowsTheFleetWithProblemsFirst: two cameras served by agents and one whose node
// has no agent. The camera nobody serves comes first with the controller's reason; the policy
// shows its active key held by both agents.
func TestStatusShowsTheFleetWithProblemsFirst(t *testing.T) {
	f := newFleet(t, defaultFleet)
	active := fleet.ShortKeyID(f.policy(t).Status.ActiveKeyID)

	r := plugin(t, f.ns, "", "status")
	wantOK(t, r)
	lines := strings.Split(r.stdout, "\n")
	section := func(header string) []string {
		re := regexp.MustCompile(header)
		for i, l := range lines {
			if re.MatchString(l) {
				var out []string
				for _, row := range lines[i+1:] {
					if row == "" {
						break
					}
					out = append(out, row)
				}
				return out
			}
		}
		t.Fatalf("no table with a header matching %s in:\n%s", header, r.stdout)
		return nil
	}
	policies := section(`^POLICY +READY`)
	if len(policies) != 1 || !strings.HasPrefix(policies[0], "home") || !strings.Contains(policies[0], active) || !strings.Contains(policies[0], " 2/2 ") {
		t.Errorf("policy table %q, want home with key %s and 2/2 agents", policies, active)
	}
	keys := section(`^POLICY +KEY`)
	if len(keys) != 1 || !strings.Contains(keys[0], active) || !strings.Contains(keys[0], "Active") || !strings.Contains(keys[0], "replaced in") {
		t.Errorf("key table %q", keys)
	}
	cameras := section(`^CAMERA +NODE`)
	if len(cameras) != 3 {
		t.Fatalf("camera table %q, want three rows", cameras)
	}
	if !strings.HasPrefix(cameras[0], "garage") || !strings.Contains(cameras[0], "WaitingForAgent") || !strings.Contains(cameras[0], f.nodes["c"]) {
		t.Errorf("first camera row %q, want garage waiting for its agent", cameras[0])
	}
	for _, row := range cameras[1:] {
		if !strings.Contains(row, "TestPattern") || !strings.Contains(row, " True") || !strings.Contains(row, "ago") {
			t.Errorf("camera row %q, want a Ready test pattern with a recent frame", row)
		}
	}

	r = plugin(t, f.ns, "", "status", "-o", "json")
	wantOK(t, r)
	var s fleet.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	if len(s.Cameras) != 3 || s.Cameras[0].Name != "garage" || len(s.Cameras[0].Problems) == 0 || s.Cameras[0].Problems[0].Reason != camv1.ReasonWaitingForAgent {
		t.Errorf("cameras %+v", s.Cameras)
	}
	if len(s.Policies) != 1 || s.Policies[0].Agents != "2/2" || len(s.Policies[0].Problems) != 0 {
		t.Errorf("policies %+v", s.Policies)
	}
	for _, c := range s.Cameras[1:] {
		if c.Ready != "True" || c.FPS == "" || c.LastFrame == nil || c.Endpoint == "" || len(c.Problems) != 0 {
			t.Errorf("camera %+v", c)
		}
	}

	r = plugin(t, f.ns, "", "status", "-o", "yaml")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "policies:") || !strings.Contains(r.stdout, "name: garage") {
		t.Errorf("status -o yaml:\n%s", r.stdout)
	}

	// Across namespaces, every row names its namespace.
	r = plugin(t, "", "", "status", "-A")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "NAMESPACE") || !regexp.MustCompile(`(?m)^`+f.ns+` +garage +`+f.nodes["c"]).MatchString(r.stdout) {
		t.Errorf("status -A:\n%s", r.stdout)
	}
}

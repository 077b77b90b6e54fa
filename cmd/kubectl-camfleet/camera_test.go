package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// login gets alice's access token through the plugin, as a user would.
func login(t *testing.T, f *fleetFixture) string {
	t.Helper()
	r := plugin(t, f.ns, password+"\n", "token", "--username", "alice")
	wantOK(t, r)
	return strings.TrimSpace(r.stdout)
}

// TestSnapshotEventsAndStreamReachTheCameraThroughItsAgent: each command finds the agent from
// the Camera's status.endpoint and calls it with a token given, logged in for, or kept by an
// AccessToken.
func TestSnapshotEventsAndStreamReachTheCameraThroughItsAgent(t *testing.T) {
	f := newFleet(t, fleetOptions{Cameras: map[string]string{"porch": "a"}, Agents: []string{"a"}, AllowQueryToken: true})
	tok := login(t, f)
	dir := t.TempDir()

	t.Run("snapshot", func(t *testing.T) {
		out := filepath.Join(dir, "porch.jpg")
		r := plugin(t, f.ns, "", "snapshot", "porch", "--token", tok, "-o", out)
		wantOK(t, r)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 160 || img.Bounds().Dy() != 120 {
			t.Fatalf("snapshot is not a 160x120 JPEG: %v", err)
		}
		if !strings.HasPrefix(r.stdout, "camera "+f.ns+"/porch: wrote ") || !strings.Contains(r.stdout, out) {
			t.Errorf("snapshot said %q", r.stdout)
		}
		// Logged in on the way, the JPEG on stdout.
		r = plugin(t, f.ns, password+"\n", "snapshot", "porch", "--username", "alice", "-o", "-")
		wantOK(t, r)
		if _, err := jpeg.Decode(strings.NewReader(r.stdout)); err != nil {
			t.Errorf("snapshot -o - is not a JPEG: %v", err)
		}
		// The token from stdin.
		r = plugin(t, f.ns, tok+"\n", "snapshot", "porch", "--token", "-", "-o", filepath.Join(dir, "stdin.jpg"))
		wantOK(t, r)
	})

	t.Run("events", func(t *testing.T) {
		// The test pattern crosses the frame every 2 s; wait for the agent to record a crossing.
		var r result
		testkit.Eventually(t, settle, "a motion event", func() (bool, string) {
			r = plugin(t, f.ns, "", "events", "porch", "--token", tok, "-o", "json")
			return r.code == 0 && strings.Contains(r.stdout, `"peakAreaPerMille"`), r.String()
		})
		var list struct {
			Camera string        `json:"camera"`
			Events []motionEvent `json:"events"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.Camera != f.ns+"/porch" || len(list.Events) == 0 || list.Events[0].PeakAreaPerMille == 0 {
			t.Fatalf("events -o json: %v\n%s", err, r.stdout)
		}
		r = plugin(t, f.ns, "", "events", "porch", "--token", tok)
		wantOK(t, r)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "PEAK AREA") || len(lines) < 2 || !strings.Contains(lines[1], "ago") || !strings.Contains(lines[1], "%") {
			t.Errorf("events table:\n%s", r.stdout)
		}
	})

	t.Run("events --watch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--kubeconfig", env.Kubeconfig, "-n", f.ns, "events", "porch", "--token", tok, "--watch", "-o", "json")
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatalf("no event line: %v; stderr %s", err, stderr.String())
		}
		var ev motionEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Camera != f.ns+"/porch" || ev.ID == 0 {
			t.Errorf("event line %q: %v", line, err)
		}
		if err := interrupt(cmd); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Errorf("events --watch after Ctrl-C: %v; stderr %s", err, stderr.String())
		}
	})

	t.Run("stream", func(t *testing.T) {
		r := plugin(t, f.ns, "", "stream", "porch", "--token", tok)
		wantOK(t, r)
		link := strings.TrimSpace(r.stdout)
		if !strings.HasPrefix(link, f.agents["a"].url+"/api/cameras/"+f.ns+"/porch/stream.mjpeg?access_token=") {
			t.Fatalf("stream printed %q", r.stdout)
		}
		// The printed URL plays as it is, with no header.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/x-mixed-replace") {
			t.Errorf("the printed URL answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}

		// --open hands the URL to $BROWSER.
		opened := filepath.Join(dir, "opened")
		browser := filepath.Join(dir, "browser.sh")
		if err := os.WriteFile(browser, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+opened+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		r = pluginEnv(t, []string{"BROWSER=" + browser}, f.ns, "", "stream", "porch", "--token", tok, "--open")
		wantOK(t, r)
		testkit.Eventually(t, 10*time.Second, "the browser to be started", func() (bool, string) {
			b, _ := os.ReadFile(opened)
			return string(b) == link, "it got " + string(b)
		})

		// A policy that takes tokens only in headers: the bare URL, and no browser.
		p := f.policy(t)
		base := p.DeepCopy()
		p.Spec.Tokens.AllowQueryToken = false
		if err := env.Client.Patch(context.Background(), p, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, settle, "the agent to refuse tokens in the URL", func() (bool, string) {
			r = plugin(t, f.ns, "", "stream", "porch", "--token", tok)
			return r.code == 0 && !strings.Contains(r.stdout, "access_token"), r.String()
		})
		if strings.TrimSpace(r.stdout) != f.agents["a"].url+"/api/cameras/"+f.ns+"/porch/stream.mjpeg" || !strings.Contains(r.stderr, "Authorization: Bearer $TOKEN") {
			t.Errorf("stream with header tokens only: %s", r)
		}
		r = plugin(t, f.ns, "", "stream", "porch", "--token", tok, "--open")
		wantError(t, r, exitFailure, "policy does not take tokens in the URL (spec.tokens.allowQueryToken)")
	})

	t.Run("errors", func(t *testing.T) {
		dead := "http://" + testkit.FreeAddr(t)
		for _, tc := range []struct {
			name string
			args []string
			code int
			want string
		}{
			{"no such camera", []string{"snapshot", "attic", "--token", tok, "-o", "x.jpg"}, exitFailure, "camera attic not found in namespace " + f.ns},
			{"agent unreachable", []string{"snapshot", "porch", "--token", tok, "-o", "x.jpg", "--agent-url", dead}, exitFailure, "cannot reach the agent at " + dead + ": connection refused"},
			{"token refused", []string{"events", "porch", "--token", "not.a.token"}, exitFailure,
				"token refused: the agent at " + f.agents["a"].url + " answered 401 for camera " + f.ns + "/porch (kubectl camfleet verify TOKEN --camera " + f.ns + "/porch says why)"},
			{"two credentials", []string{"snapshot", "porch", "--token", tok, "--username", "alice"}, exitUsage, "give one of --token, --access-token and --username"},
			{"no credential", []string{"snapshot", "porch"}, exitUsage, "no token: give --token, --access-token, or --username to log in"},
			{"no camera", []string{"snapshot", "--token", tok}, exitUsage, "name the camera"},
			{"two cameras", []string{"events", "porch", "shed", "--token", tok}, exitUsage, "one camera only"},
			{"a bad agent URL", []string{"stream", "porch", "--token", tok, "--agent-url", "localhost:8090"}, exitUsage, "want an http or https URL"},
			{"yaml while watching", []string{"events", "porch", "--token", tok, "--watch", "-o", "yaml"}, exitUsage, "--watch prints JSON lines or text"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, plugin(t, f.ns, "", tc.args...), tc.code, tc.want)
			})
		}
	})
}

// TestCameraWithoutAgentHasNoEndpoint: a camera no agent has reported on cannot be reached,
// and the error says why in the controller's words.
func TestCameraWithoutAgentHasNoEndpoint(t *testing.T) {
	f := newFleet(t, fleetOptions{Cameras: map[string]string{"garage": "c"}})
	testkit.Eventually(t, settle, "garage to wait for its agent", func() (bool, string) {
		c := f.camera(t, "garage")
		for _, cond := range c.Status.Conditions {
			if cond.Type == camv1.ConditionReady && cond.Reason == camv1.ReasonWaitingForAgent {
				return true, ""
			}
		}
		return false, "no WaitingForAgent yet"
	})
	r := plugin(t, f.ns, "", "snapshot", "garage", "--token", "x.y.z", "-o", "x.jpg")
	wantError(t, r, exitFailure, "camera "+f.ns+"/garage has no endpoint: no agent has reported on it yet (WaitingForAgent: ")
}

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/fleet"
	"github.com/camfleet/camfleet/internal/testkit"
	"github.com/camfleet/camfleet/internal/token"
)

// TestTokenLogsInAndReadsAccessTokens: a login with the password on stdin prints an access
// token the policy's agents accept; -o json adds the refresh token and both expiries; an
// AccessToken's token is read from its Secret; wrong passwords and unknown names fail in a line.
func TestTokenLogsInAndReadsAccessTokens(t *testing.T) {
	f := newFleet(t, fleetOptions{Cameras: map[string]string{"porch": "a"}, Agents: []string{"a"}})

	r := plugin(t, f.ns, password+"\n", "token", "--username", "alice")
	wantOK(t, r)
	tok := strings.TrimSpace(r.stdout)
	if strings.Count(r.stdout, "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("token printed %q, want one JWS on one line", r.stdout)
	}
	if v, err := fleet.Check(f.policy(t), tok, time.Now()); err != nil || !v.Valid || v.Subject != "alice" {
		t.Errorf("the printed token does not verify under the policy: %+v %v", v, err)
	}
	if strings.Contains(r.stderr, password) {
		t.Errorf("the password was echoed: %q", r.stderr)
	}

	// Found by the camera, against the token service named outright, as JSON.
	r = pluginEnv(t, []string{"CAMFLEET_TOKEN_SERVICE_URL=" + f.tokenService}, f.ns, password+"\n", "token", "--camera", "porch", "--username", "alice", "-o", "json")
	wantOK(t, r)
	var got issued
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("token -o json: %v\n%s", err, r.stdout)
	}
	if got.Policy != f.ns+"/home" || got.AccessToken == "" || got.RefreshToken == "" || got.AccessTokenExpiry == nil || got.RefreshTokenExpiry == nil ||
		time.Until(*got.AccessTokenExpiry) > 16*time.Minute || time.Until(*got.AccessTokenExpiry) < 10*time.Minute || !got.RefreshTokenExpiry.After(*got.AccessTokenExpiry) {
		t.Errorf("token -o json: %+v", got)
	}
	if u, err := token.ReadUnverified(got.RefreshToken); err != nil || u.Type != token.TypeRefresh {
		t.Errorf("refresh token of type %q: %v", u.Type, err)
	}

	r = plugin(t, f.ns, "wrong\n", "token", "--policy", "home", "--username", "alice")
	wantError(t, r, exitFailure, "login refused: wrong user name or password for alice at policy "+f.ns+"/home")
	r = plugin(t, f.ns, "", "token", "--username", "alice")
	wantError(t, r, exitUsage, "no password on stdin")
	r = plugin(t, f.ns, "", "token")
	wantError(t, r, exitUsage, "no user to log in as: give --username")
	r = plugin(t, f.ns, password+"\n", "token", "--policy", "nope", "--username", "alice")
	wantError(t, r, exitFailure, "token policy nope not found in namespace "+f.ns)
	dead := "http://" + testkit.FreeAddr(t)
	r = plugin(t, f.ns, password+"\n", "token", "--username", "alice", "--token-service-url", dead)
	wantError(t, r, exitFailure, "cannot reach the token service at "+dead+": connection refused")
	r = plugin(t, f.ns, password+"\n", "token", "--username", "alice", "--token-service-url", "ftp://x")
	wantError(t, r, exitUsage, `--token-service-url "ftp://x": want an http or https URL`)

	// An AccessToken the controller keeps fresh.
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "home", Subject: "worker", Roles: []string{"viewer"},
		TTL: &metav1.Duration{Duration: 2 * time.Hour}, SecretName: "worker-token"}}
	at.Name, at.Namespace = "worker", f.ns
	create(t, at)
	testkit.Eventually(t, settle, "the AccessToken's Secret", func() (bool, string) {
		var s corev1.Secret
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "worker-token"}, &s)
		return err == nil && len(s.Data["token"]) > 0, "no token yet"
	})
	r = plugin(t, f.ns, "", "token", "--access-token", "worker", "-o", "yaml")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "accessToken: ey") || !strings.Contains(r.stdout, "accessTokenExpiry:") || !strings.Contains(r.stdout, "policy: "+f.ns+"/home") {
		t.Errorf("token --access-token -o yaml:\n%s", r.stdout)
	}
	r = plugin(t, f.ns, "", "token", "--access-token", "worker")
	wantOK(t, r)
	if v, err := fleet.Check(f.policy(t), strings.TrimSpace(r.stdout), time.Now()); err != nil || !v.Valid || v.Subject != "worker" {
		t.Errorf("the AccessToken's token does not verify: %+v %v", v, err)
	}
	r = plugin(t, f.ns, "", "token", "--access-token", "nobody")
	wantError(t, r, exitFailure, "access token nobody not found in namespace "+f.ns)
	r = plugin(t, f.ns, "", "token", "--access-token", "worker", "--username", "alice")
	wantError(t, r, exitUsage, "--access-token reads a stored token")
}

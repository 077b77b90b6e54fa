package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/camfleet/camfleet/internal/testkit"
	"github.com/camfleet/camfleet/internal/token"
)

// TestVerifySaysWhichRuleRefusesAToken: a token the agent takes is valid, with what it may do
// on a camera; a token signed by a key the policy never published, one whose ID the policy
// revoked, and a refresh token are refused by their rules, as the agent refuses them with 401.
func TestVerifySaysWhichRuleRefusesAToken(t *testing.T) {
	f := newFleet(t, fleetOptions{Cameras: map[string]string{"porch": "a"}, Agents: []string{"a"}})
	r := plugin(t, f.ns, password+"\n", "token", "--username", "alice", "-o", "json")
	wantOK(t, r)
	var got issued
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	tok := got.AccessToken

	// Found by its issuer in every namespace, read from stdin.
	r = plugin(t, "", tok+"\n", "verify", "-")
	wantOK(t, r)
	if !has(r.stdout, `Result: +valid under policy `+f.ns+`/home`) || !has(r.stdout, `Subject: +alice`) || !has(r.stdout, `Grants: +camera:\*:`+f.ns+`/\*`) {
		t.Errorf("verify of a good token:\n%s", r.stdout)
	}
	r = plugin(t, f.ns, "", "verify", tok, "--camera", "porch", "-o", "json")
	wantOK(t, r)
	var res verifyResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.Camera != f.ns+"/porch" || strings.Join(res.CameraActions, ",") != "snapshot,stream,events" || res.Header["typ"] != "at+jwt" {
		t.Errorf("verify --camera -o json: %+v", res)
	}

	// Signed by a key the policy never published, with the policy's issuer: unknown_kid, as
	// the agent's 401 would hide.
	stranger, err := token.GenerateSigningKey(token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := token.Sign(token.Claims{Issuer: f.policy(t).Status.Issuer, Subject: "mallory", Audience: []string{"camfleet"},
		IssuedAt: time.Now(), Expiry: time.Now().Add(time.Minute)}, token.TypeAccess, stranger)
	if err != nil {
		t.Fatal(err)
	}
	r = plugin(t, f.ns, "", "events", "porch", "--token", forged)
	wantError(t, r, exitFailure, "token refused: the agent at")
	r = plugin(t, f.ns, "", "verify", forged, "--camera", "porch")
	wantError(t, r, exitFailure, "token refused by policy "+f.ns+"/home: unknown_kid")
	if !has(r.stdout, `Rule: +unknown_kid`) || !strings.Contains(r.stdout, "key "+stranger.KeyID+" is not one of the keys policy "+f.ns+"/home publishes") {
		t.Errorf("verify of a forged token:\n%s", r.stdout)
	}

	// A refresh token is no access token.
	r = plugin(t, f.ns, "", "verify", got.RefreshToken, "--policy", "home")
	wantError(t, r, exitFailure, "token refused by policy "+f.ns+"/home: wrong_type")
	if !strings.Contains(r.stdout, "this is a refresh token") {
		t.Errorf("verify of a refresh token:\n%s", r.stdout)
	}

	// Revoked by ID: refused by the agent and by verify, which names the ID.
	u, err := token.ReadUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	p := f.policy(t)
	base := p.DeepCopy()
	p.Spec.RevokedTokenIDs = []string{u.ID}
	if err := env.Client.Patch(context.Background(), p, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "the agent to refuse the revoked token", func() (bool, string) {
		r = plugin(t, f.ns, "", "events", "porch", "--token", tok)
		return r.code == exitFailure && strings.Contains(r.stderr, "answered 401"), r.String()
	})
	r = plugin(t, f.ns, "", "verify", tok, "--policy", f.ns+"/home", "-o", "yaml")
	if r.code != exitFailure || !strings.Contains(r.stdout, "reason: revoked") || !strings.Contains(r.stdout, u.ID) {
		t.Errorf("verify of a revoked token: %s", r)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token", []string{"verify"}, exitUsage, "no token on stdin"},
		{"policy and camera", []string{"verify", tok, "--policy", "home", "--camera", "porch"}, exitUsage, "give --policy or --camera, not both"},
		{"a token naming no issuer", []string{"verify", "garbage"}, exitUsage, "the token names no issuer to find its policy by"},
		{"an issuer nobody trusts", []string{"verify", forgedBy(t, stranger, "https://nobody.test")}, exitFailure, `no token policy in namespace ` + f.ns + ` trusts the token's issuer "https://nobody.test"`},
		{"no such policy", []string{"verify", tok, "--policy", "nope"}, exitFailure, "token policy nope not found in namespace " + f.ns},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, plugin(t, f.ns, "", tc.args...), tc.code, tc.want)
		})
	}
	// A malformed token is the verifier's call, with the fault named.
	r = plugin(t, f.ns, "", "verify", "Bearer "+tok, "--policy", "home")
	if r.code != exitFailure || !strings.Contains(r.stdout, `starts with "Bearer "`) {
		t.Errorf("verify of a Bearer-prefixed token: %s", r)
	}
}

func forgedBy(t *testing.T, k token.SigningKey, iss string) string {
	t.Helper()
	s, err := token.Sign(token.Claims{Issuer: iss, Subject: "x", Audience: []string{"camfleet"}, Expiry: time.Now().Add(time.Minute)}, token.TypeAccess, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// has reports whether a line of out matches the regular expression re.
func has(out, re string) bool { return regexp.MustCompile(`(?m)^` + re).MatchString(out) }

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// TestNoSecretInAnyLogLine runs the real controller at debug verbosity through a whole story
// (keys generated, a login, a failed login, a refresh and its reuse, an AccessToken minted and
// renewed) and searches every line it logged for the passwords, the hash, and every token.
func TestNoSecretInAnyLogLine(t *testing.T) {
	ctx := context.Background()
	ns, err := env.CreateNamespace(ctx, "logs")
	if err != nil {
		t.Fatal(err)
	}
	const password = "correct horse battery staple"
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	users := &corev1.Secret{Data: map[string][]byte{"alice": hash}}
	users.Name, users.Namespace = "users", ns
	// Marked for camfleet: the controller's token service reads no other password Secret.
	users.Labels = map[string]string{camv1.LabelPassword: camv1.LabelPasswordValue}
	short := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	policy := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Roles: []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:*"}}},
		Users: []camv1.User{{Name: "alice", Roles: []string{"viewer"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "alice"}}},
	}}
	policy.Name, policy.Namespace = "home", ns
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "home", Subject: "worker", Roles: []string{"viewer"},
		TTL: short(6 * time.Second), RenewBefore: short(3 * time.Second), SecretName: "worker-token"}}
	at.Name, at.Namespace = "worker", ns
	for _, o := range []client.Object{users, policy, at} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	bin := testkit.Build(t, "", ".", name)
	tokens := testkit.FreeAddr(t)
	var logs testkit.LogBuffer
	cmd := exec.Command(bin, "--kubeconfig", env.Kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", testkit.FreeAddr(t),
		"--token-service-bind-address", tokens, "--token-service-url", "http://"+tokens, "--default-token-policy", ns+"/home", "--zap-log-level", "debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	// Each wait, and each request, has a minute.
	const settle = 60 * time.Second
	waitCtx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	post := func(path, body string) map[string]any {
		t.Helper()
		reqCtx, cancel := context.WithTimeout(ctx, settle)
		defer cancel()
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodPost, "http://"+tokens+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]any{}
		_ = json.Unmarshal(raw, &out)
		return out
	}
	get(waitCtx, t, "http://"+tokens+"/healthz")
	// The first login waits for the policy's first key.
	var login map[string]any
	testkit.Eventually(t, settle, "a successful login", func() (bool, string) {
		login = post("/api/login", `{"user":"alice","pass":"`+password+`"}`)
		if login["access_token"] != nil {
			return true, ""
		}
		return false, fmt.Sprintf("the last login answered %v; logs:\n%s", login, logs.String())
	})
	post("/api/login", `{"user":"alice","pass":"not the password"}`)
	refreshed := post("/api/refresh", `{"refresh_token":"`+login["refresh_token"].(string)+`"}`)
	post("/api/refresh", `{"refresh_token":"`+login["refresh_token"].(string)+`"}`) // reuse

	// The AccessToken is minted, then renewed: two different tokens pass through the Secret.
	seen := map[string]bool{}
	testkit.Eventually(t, settle, "the AccessToken to be minted and renewed", func() (bool, string) {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "worker-token"}, &s); err == nil && len(s.Data["token"]) > 0 {
			seen[string(s.Data["token"])] = true
		}
		if len(seen) >= 2 {
			return true, ""
		}
		return false, fmt.Sprintf("%d tokens seen in the Secret; logs:\n%s", len(seen), logs.String())
	})
	var keySecret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "home-signing-keys"}, &keySecret); err != nil {
		t.Fatal(err)
	}

	secrets := []string{password, "not the password", string(hash)}
	for _, m := range []map[string]any{login, refreshed} {
		for _, k := range []string{"access_token", "refresh_token"} {
			if s, ok := m[k].(string); ok {
				secrets = append(secrets, s)
			}
		}
	}
	for tok := range seen {
		secrets = append(secrets, tok)
	}
	for name, pem := range keySecret.Data {
		if strings.HasSuffix(name, ".pem") {
			secrets = append(secrets, strings.Split(string(pem), "\n")[1])
		}
	}
	out := logs.String()
	if !strings.Contains(out, "Login succeeded") || !strings.Contains(out, "Refresh token reused") || strings.Count(out, "\n") < 20 {
		t.Fatalf("the run logged too little to prove anything:\n%s", out)
	}
	for _, s := range secrets {
		for _, part := range append([]string{s}, strings.Split(s, ".")...) {
			if len(part) >= 16 && strings.Contains(out, part) {
				t.Fatalf("a secret (%d chars) appears in the controller's logs", len(part))
			}
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/controllers"
	"github.com/camfleet/camfleet/internal/testenv"
	"github.com/camfleet/camfleet/internal/testkit"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// call sends one request and returns the status and body.
func call(ctx context.Context, t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// settledPolicy makes a TokenPolicy "home" with user alice in ns and runs the TokenPolicy
// controller over it until its keys are published, as the controller binary would.
func settledPolicy(t *testing.T, ns, password, serviceURL string) *camv1.TokenPolicy {
	t.Helper()
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := &corev1.Secret{Data: map[string][]byte{"alice": hash}}
	users.Name, users.Namespace = "users", ns
	users.Labels = map[string]string{camv1.LabelPassword: camv1.LabelPasswordValue}
	if err := env.Client.Create(ctx, users); err != nil {
		t.Fatal(err)
	}
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Roles: []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:*"}}},
		Users: []camv1.User{{Name: "alice", Roles: []string{"viewer"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "alice"}}},
	}}
	p.Name, p.Namespace = "home", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := &controllers.TokenPolicyReconciler{Client: env.Client, Clock: clock.RealClock{}, TokenServiceURL: serviceURL}
	for range 3 {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	if p.Status.Verification == nil || p.Status.Verification.JWKS == "" {
		t.Fatalf("policy %s/home published no keys", ns)
	}
	return p
}

// TestServesOnlyItsWatchedNamespaces runs the real binary with --watch-namespaces: it serves
// the JWKS, logins and the default policy of a policy in a watched namespace, and answers a
// policy in another namespace as unknown; it stops cleanly on SIGTERM.
func TestServesOnlyItsWatchedNamespaces(t *testing.T) {
	bin := testkit.Build(t, "", ".", name)
	watched, other := env.Namespace(t), env.Namespace(t)
	metrics, probes, tokens := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	url := "http://" + tokens
	home := settledPolicy(t, watched, "watched-pass", url)
	settledPolicy(t, other, "other-pass", url)

	var logs bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", env.Kubeconfig, "--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
		"--token-service-bind-address", tokens, "--token-service-url", url, "--watch-namespaces", watched,
		"--default-token-policy", watched+"/home")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("token service output:\n%s", logs.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if code, _ := call(ctx, t, http.MethodGet, url+"/healthz", ""); code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the token service never served /healthz")
		case <-time.After(100 * time.Millisecond):
		}
	}

	if code, body := call(ctx, t, http.MethodGet, url+"/policies/"+watched+"/home/jwks.json", ""); code != http.StatusOK || body != home.Status.Verification.JWKS {
		t.Errorf("JWKS of the watched policy: %d %s", code, body)
	}
	code, body := call(ctx, t, http.MethodPost, url+"/policies/"+watched+"/home/login", `{"user":"alice","pass":"watched-pass"}`)
	var tokensOut struct {
		AccessToken string `json:"access_token"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &tokensOut) != nil || tokensOut.AccessToken == "" {
		t.Errorf("login at the watched policy: %d %s", code, body)
	}
	if code, body := call(ctx, t, http.MethodPost, url+"/api/login", `{"user":"alice","pass":"watched-pass"}`); code != http.StatusOK {
		t.Errorf("login at the default policy: %d %s", code, body)
	}
	for _, path := range []string{"jwks.json", ".well-known/openid-configuration"} {
		if code, body := call(ctx, t, http.MethodGet, url+"/policies/"+other+"/home/"+path, ""); code != http.StatusNotFound || !strings.Contains(body, "unknown token policy") {
			t.Errorf("%s of the policy in the unwatched namespace: %d %s, want 404", path, code, body)
		}
	}
	if code, body := call(ctx, t, http.MethodPost, url+"/policies/"+other+"/home/login", `{"user":"alice","pass":"other-pass"}`); code != http.StatusNotFound {
		t.Errorf("login at the policy in the unwatched namespace: %d %s, want 404", code, body)
	}
	var sessions corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: other, Name: "home-sessions"}, &sessions); err == nil {
		t.Errorf("the token service wrote a session store in the unwatched namespace")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("token service exited with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		t.Fatal("token service did not stop after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"Starting the token service"`) {
		t.Errorf("no structured start-up log line")
	}
}

// TestFlags: --help and --version answer, a bad flag fails with one clear line.
func TestFlags(t *testing.T) {
	bin := testkit.Build(t, "", ".", name)
	cases := []struct {
		args     []string
		code     int
		stdout   string
		stderrIs string
	}{
		{[]string{"--version"}, 0, name + " v0.0.0-dev", ""},
		{[]string{"--help"}, 0, "-watch-namespaces", ""},
		{[]string{"--help"}, 0, "-token-service-bind-address", ""},
		{[]string{"--default-token-policy", "nonamespace"}, 2, "", name + ": --default-token-policy \"nonamespace\": want namespace/name\n"},
		{[]string{"--watch-namespaces", "cams,Not_A_Namespace"}, 2, "", ""},
		{[]string{"--watch-namespaces", "cams", "--default-token-policy", "home/default"}, 2, "", name + ": --default-token-policy home/default: namespace \"home\" is not in --watch-namespaces\n"},
		{[]string{"--token-service-bind-address", ""}, 2, "", name + ": --token-service-bind-address is empty: serving tokens is this binary's only job\n"},
		{[]string{"--no-such-flag"}, 2, "", name + ": flag provided but not defined: -no-such-flag (see --help)\n"},
		{[]string{"stray"}, 2, "", name + ": unexpected argument \"stray\" (see --help)\n"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || (tc.stderrIs != "" && stderr.String() != tc.stderrIs) ||
				(tc.code != 0 && strings.Count(stderr.String(), "\n") != 1) {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d, stdout containing %q, stderr %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderrIs)
			}
		})
	}
}

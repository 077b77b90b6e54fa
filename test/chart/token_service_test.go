package chart

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/controllers"
	"github.com/camfleet/camfleet/internal/testkit"
)

// settledPolicy makes a TokenPolicy "home" in ns whose user alice has password pass, and runs
// the TokenPolicy controller over it until its keys are published.
func settledPolicy(t *testing.T, ns, pass string) {
	t.Helper()
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
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
	r := &controllers.TokenPolicyReconciler{Client: env.Client, Clock: clock.RealClock{}}
	for range 3 {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}); err != nil {
			t.Fatal(err)
		}
	}
}

// kubeconfigAs writes a kubeconfig that acts as user, through the admin's impersonation.
func kubeconfigAs(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTokenServiceRunsUnderItsOwnIdentity installs the chart with watchNamespaces and runs
// the real token service binary as the chart's token-service ServiceAccount: with nothing
// but the Role the chart grants it, it serves logins (reading the policy, its password and
// signing-key Secrets, and writing the session ConfigMap) for a policy in its namespace,
// answers a policy in another namespace as unknown, and the API server refuses it every
// Secret outside its namespace and every write to a Secret.
func TestTokenServiceRunsUnderItsOwnIdentity(t *testing.T) {
	release, watched, other := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	// The node fence and the agent's roles are cluster-scoped and TestChartInstalls installed
	// them already.
	helm(t, "install", "cf", "charts/camfleet", "-n", release, "--set", "watchNamespaces={"+watched+"}", "--set", "agent.nodeFence.enabled=false", "--set", "agent.enabled=false")
	settledPolicy(t, watched, "watched-pass")
	settledPolicy(t, other, "other-pass")
	sa := "system:serviceaccount:" + release + ":camfleet-token-service"

	checkAccess(t, sa, []access{
		// In its namespace: the caches of signing keys and passwords (RBAC cannot narrow a
		// list by label, so this is every Secret of the namespace), its session store.
		{"list", "", "secrets", watched, "", true},
		{"watch", "", "secrets", watched, "", true},
		{"list", "camfleet.io", "tokenpolicies", watched, "", true},
		{"create", "", "configmaps", watched, "", true},
		{"update", "", "configmaps", watched, "home-sessions", true},
		// No Secret written, even in its namespace.
		{"create", "", "secrets", watched, "", false},
		{"update", "", "secrets", watched, "home-signing-keys", false},
		{"patch", "", "secrets", watched, "home-signing-keys", false},
		{"delete", "", "secrets", watched, "users", false},
		// Nothing at all elsewhere: not the other namespace's signing keys, not the release
		// namespace, not kube-system, not cluster-wide.
		{"list", "", "secrets", other, "", false},
		{"get", "", "secrets", other, "home-signing-keys", false},
		{"list", "", "secrets", release, "", false},
		{"get", "", "secrets", "kube-system", "bootstrap-token-abcdef", false},
		{"list", "", "secrets", "", "", false},
		{"list", "camfleet.io", "tokenpolicies", other, "", false},
		{"list", "camfleet.io", "tokenpolicies", "", "", false},
		{"create", "", "configmaps", other, "", false},
	})

	bin := testkit.Build(t, env.RepoRoot, "./cmd/camfleet-token-service", "camfleet-token-service")
	addr := testkit.FreeAddr(t)
	url := "http://" + addr
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", kubeconfigAs(t, sa), "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--token-service-bind-address", addr, "--token-service-url", url, "--watch-namespaces", watched)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("token service output:\n%s", logs.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// It listens once its caches have synced, which its RBAC must allow.
	for {
		if code, _ := call(ctx, http.MethodGet, url+"/healthz", ""); code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the token service never served: its caches did not sync under its own identity")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code, body := call(ctx, http.MethodPost, url+"/policies/"+watched+"/home/login", `{"user":"alice","pass":"watched-pass"}`); code != http.StatusOK || !strings.Contains(body, `"refresh_token"`) {
		t.Fatalf("login under the token service's identity: %d %s", code, body)
	}
	var sessions corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: watched, Name: "home-sessions"}, &sessions); err != nil {
		t.Errorf("the login stored no session: %v", err)
	}
	if code, body := call(ctx, http.MethodPost, url+"/policies/"+other+"/home/login", `{"user":"alice","pass":"other-pass"}`); code != http.StatusNotFound {
		t.Errorf("login at the policy in the unwatched namespace: %d %s, want 404", code, body)
	}
	if strings.Contains(logs.String(), "forbidden") {
		t.Errorf("the token service was refused something it needs:\n%s", logs.String())
	}
}

// call sends one request and returns the status and body; status 0 when nothing answered.
func call(ctx context.Context, method, url, body string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

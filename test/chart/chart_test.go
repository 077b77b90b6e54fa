// Package chart tests the Helm chart with the real helm against the real test API server:
// it renders, installs, and the ServiceAccount it creates may do what the controller needs
// and nothing more.
package chart

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/camfleet/camfleet/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(env.RepoRoot, "hack", "tools.sh"), "helm").Output()
	if err != nil {
		t.Fatalf("hack/tools.sh helm: %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(strings.TrimSpace(string(out)), args...)
	cmd.Dir = env.RepoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestChartRendersWhatTheCodeDeclares: the chart lints, its CRDs are the generated ones, its
// ClusterRole has exactly the generated rules, and values reach the controller's flags.
func TestChartRendersWhatTheCodeDeclares(t *testing.T) {
	helm(t, "lint", "charts/camfleet")
	out := helm(t, "template", "cf", "charts/camfleet", "-n", "camfleet-system", "--kube-version", "1.37.2",
		"--set", "controller.tokenServiceURL=https://cams.example", "--set", "controller.defaultTokenPolicy=home/default")
	var role rbacv1.ClusterRole
	var deploy appsv1.Deployment
	for _, doc := range strings.Split(out, "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: ClusterRole\n"):
			if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(doc, "kind: Deployment\n"):
			if err := yaml.Unmarshal([]byte(doc), &deploy); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &generated); err != nil {
		t.Fatal(err)
	}
	a, _ := yaml.Marshal(role.Rules)
	b, _ := yaml.Marshal(generated.Rules)
	if len(role.Rules) == 0 || !bytes.Equal(a, b) {
		t.Errorf("chart ClusterRole rules differ from config/rbac/role.yaml:\n%s\nvs\n%s", a, b)
	}
	args := strings.Join(deploy.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--token-service-url=https://cams.example", "--default-token-policy=home/default", "--leader-elect=true", "--leader-election-namespace=camfleet-system"} {
		if !strings.Contains(args, want) {
			t.Errorf("controller args %q lack %q", args, want)
		}
	}
	crds, _ := filepath.Glob(filepath.Join(env.RepoRoot, "config", "crd", "bases", "*.yaml"))
	for _, f := range crds {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(env.RepoRoot, "charts", "camfleet", "crds", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/camfleet/crds/%s differs from config/crd/bases (run make manifests): %v", filepath.Base(f), err)
		}
	}
}

// TestChartInstalls runs helm install against the test API server, then asks the API server
// what the chart's ServiceAccount may do.
func TestChartInstalls(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	helm(t, "install", "cf", "charts/camfleet", "-n", ns)
	var deploy appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "camfleet-controller"}, &deploy); err != nil {
		t.Fatalf("the chart's Deployment is not in the cluster: %v", err)
	}
	if out := helm(t, "list", "-n", ns, "-q"); strings.TrimSpace(out) != "cf" {
		t.Fatalf("helm list: %q", out)
	}
	sa := "system:serviceaccount:" + ns + ":camfleet-controller"
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: sa}
	as, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		verb, group, resource, namespace string
		allowed                          bool
	}{
		{"create", "", "secrets", "default", true},
		{"update", "", "secrets", "default", true},
		{"delete", "", "secrets", "default", false},
		{"update", "", "configmaps", "default", true},
		{"list", "camfleet.io", "tokenpolicies", "", true},
		{"patch", "camfleet.io", "tokenpolicies/status", "default", true},
		{"delete", "camfleet.io", "tokenpolicies", "default", false},
		{"create", "events.k8s.io", "events", "default", true},
		{"list", "", "pods", "default", false},
		{"get", "", "nodes", "", false},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", false},
		{"update", "coordination.k8s.io", "leases", ns, true},
		{"update", "coordination.k8s.io", "leases", "default", false},
	}
	for _, tc := range cases {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: tc.verb, Group: tc.group, Resource: strings.Split(tc.resource, "/")[0], Namespace: tc.namespace,
		}}}
		if parts := strings.Split(tc.resource, "/"); len(parts) == 2 {
			review.Spec.ResourceAttributes.Subresource = parts[1]
		}
		if err := as.Create(ctx, review); err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != tc.allowed {
			t.Errorf("%s may %s %s/%s in %q: %v, want %v", sa, tc.verb, tc.group, tc.resource, tc.namespace, review.Status.Allowed, tc.allowed)
		}
	}
}

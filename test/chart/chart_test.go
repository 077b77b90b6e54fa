// Package chart tests the Helm chart with the real helm against the real test API server:
// it renders, installs, and the ServiceAccounts it creates (the controller's and the token
// service's) may do what each needs and nothing more.
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
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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

// manifest is one rendered document, decoded as far as the tests need.
type manifest struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	raw string
}

// render runs helm template with args and returns its documents.
func render(t *testing.T, args ...string) []manifest {
	t.Helper()
	out := helm(t, append([]string{"template", "cf", "charts/camfleet", "-n", "camfleet-system", "--kube-version", "1.37.2"}, args...)...)
	var docs []manifest
	for _, doc := range strings.Split(out, "\n---\n") {
		var m manifest
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, doc)
		}
		if m.Kind != "" {
			m.raw = doc
			docs = append(docs, m)
		}
	}
	return docs
}

// find decodes the document of that kind, name and namespace into into, and says whether
// there was one.
func find(t *testing.T, docs []manifest, kind, name, namespace string, into any) bool {
	t.Helper()
	for _, d := range docs {
		if d.Kind == kind && d.Metadata.Name == name && d.Metadata.Namespace == namespace {
			if err := yaml.Unmarshal([]byte(d.raw), into); err != nil {
				t.Fatal(err)
			}
			return true
		}
	}
	return false
}

// generatedRules are the rules controller-gen wrote into a committed role file.
func generatedRules(t *testing.T, path string) []rbacv1.PolicyRule {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &generated); err != nil {
		t.Fatal(err)
	}
	if len(generated.Rules) == 0 {
		t.Fatalf("%s holds no rules", path)
	}
	return generated.Rules
}

func sameRules(a, b []rbacv1.PolicyRule) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}

func args(d *appsv1.Deployment) string {
	return strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ") + " "
}

// TestChartRendersWhatTheCodeDeclares: the chart lints, its CRDs are the generated ones, its
// roles have exactly the generated rules, values reach both binaries' flags, and the token
// service runs on its own by default.
func TestChartRendersWhatTheCodeDeclares(t *testing.T) {
	helm(t, "lint", "charts/camfleet")
	controllerRules := generatedRules(t, "config/rbac/role.yaml")
	tokenRules := generatedRules(t, "config/rbac/token-service/role.yaml")
	docs := render(t, "--set", "controller.tokenServiceURL=https://cams.example", "--set", "controller.defaultTokenPolicy=home/default")
	for _, c := range []struct {
		name  string
		rules []rbacv1.PolicyRule
	}{{"camfleet-controller", controllerRules}, {"camfleet-token-service", tokenRules}} {
		var role rbacv1.ClusterRole
		var binding rbacv1.ClusterRoleBinding
		if !find(t, docs, "ClusterRole", c.name, "", &role) || !sameRules(role.Rules, c.rules) {
			t.Errorf("ClusterRole %s: rules %v differ from the generated %v", c.name, role.Rules, c.rules)
		}
		if !find(t, docs, "ClusterRoleBinding", c.name, "", &binding) || binding.RoleRef.Name != c.name ||
			len(binding.Subjects) != 1 || binding.Subjects[0].Name != c.name || binding.Subjects[0].Namespace != "camfleet-system" {
			t.Errorf("ClusterRoleBinding %s: %+v", c.name, binding)
		}
	}
	var controller, tokens appsv1.Deployment
	if !find(t, docs, "Deployment", "camfleet-controller", "camfleet-system", &controller) {
		t.Fatal("no controller Deployment")
	}
	for _, want := range []string{"--token-service-url=https://cams.example ", "--default-token-policy=home/default ", "--leader-elect=true ",
		"--leader-election-namespace=camfleet-system ", "--token-service-bind-address= "} {
		if !strings.Contains(args(&controller), want) {
			t.Errorf("controller args %q lack %q", args(&controller), want)
		}
	}
	if !find(t, docs, "Deployment", "camfleet-token-service", "camfleet-system", &tokens) {
		t.Fatal("no token service Deployment")
	}
	pod := tokens.Spec.Template.Spec
	if pod.ServiceAccountName != "camfleet-token-service" || !strings.Contains(pod.Containers[0].Image, "/camfleet-token-service:") {
		t.Errorf("token service runs as %q from image %q", pod.ServiceAccountName, pod.Containers[0].Image)
	}
	for _, want := range []string{"--token-service-url=https://cams.example ", "--default-token-policy=home/default ", "--token-service-bind-address=:8082 "} {
		if !strings.Contains(args(&tokens), want) {
			t.Errorf("token service args %q lack %q", args(&tokens), want)
		}
	}
	if strings.Contains(args(&tokens), "leader-elect") || strings.Contains(args(&tokens)+args(&controller), "--watch-namespaces") {
		t.Errorf("unexpected flags: token service %q, controller %q", args(&tokens), args(&controller))
	}
	var svc corev1.Service
	if !find(t, docs, "Service", "camfleet-token-service", "camfleet-system", &svc) || svc.Spec.Selector["app.kubernetes.io/component"] != "token-service" ||
		!hasPort(&tokens, svc.Spec.Ports[0].TargetPort.StrVal) {
		t.Errorf("Service %+v does not reach the token service's pods", svc.Spec)
	}

	// The controller serves tokens itself when the token service is off.
	docs = render(t, "--set", "tokenService.enabled=false")
	if find(t, docs, "Deployment", "camfleet-token-service", "camfleet-system", &tokens) || find(t, docs, "ServiceAccount", "camfleet-token-service", "camfleet-system", &corev1.ServiceAccount{}) ||
		find(t, docs, "ClusterRole", "camfleet-token-service", "", &rbacv1.ClusterRole{}) {
		t.Error("tokenService.enabled=false still renders the token service's Deployment, ServiceAccount or ClusterRole")
	}
	find(t, docs, "Deployment", "camfleet-controller", "camfleet-system", &controller)
	if !strings.Contains(args(&controller), "--token-service-bind-address=:8082 ") {
		t.Errorf("controller args %q: it does not serve the token service", args(&controller))
	}
	if !find(t, docs, "Service", "camfleet-token-service", "camfleet-system", &svc) || svc.Spec.Selector["app.kubernetes.io/component"] != "controller" ||
		!hasPort(&controller, svc.Spec.Ports[0].TargetPort.StrVal) {
		t.Errorf("Service %+v does not reach the controller's token service", svc.Spec)
	}

	// watchNamespaces: Roles in each namespace, nothing cluster-wide, and both binaries confined.
	// The agent alone keeps its cluster-wide role: it serves its node's Cameras of every
	// namespace and reads only camfleet.io objects, never a Secret or a ConfigMap.
	docs = render(t, "--set", "watchNamespaces={cams,garden}")
	for _, d := range docs {
		if (d.Kind == "ClusterRole" || d.Kind == "ClusterRoleBinding") && d.Metadata.Name != "camfleet-agent" {
			t.Errorf("watchNamespaces still renders %s %s", d.Kind, d.Metadata.Name)
		}
	}
	for _, ns := range []string{"cams", "garden"} {
		for _, c := range []struct {
			name  string
			rules []rbacv1.PolicyRule
		}{{"camfleet-controller", controllerRules}, {"camfleet-token-service", tokenRules}} {
			var role rbacv1.Role
			var binding rbacv1.RoleBinding
			if !find(t, docs, "Role", c.name, ns, &role) || !sameRules(role.Rules, c.rules) {
				t.Errorf("Role %s/%s: rules %v, want the generated %v", ns, c.name, role.Rules, c.rules)
			}
			if !find(t, docs, "RoleBinding", c.name, ns, &binding) || binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != c.name ||
				binding.Subjects[0].Name != c.name || binding.Subjects[0].Namespace != "camfleet-system" {
				t.Errorf("RoleBinding %s/%s: %+v", ns, c.name, binding)
			}
		}
	}
	find(t, docs, "Deployment", "camfleet-controller", "camfleet-system", &controller)
	find(t, docs, "Deployment", "camfleet-token-service", "camfleet-system", &tokens)
	for _, d := range []*appsv1.Deployment{&controller, &tokens} {
		if !strings.Contains(args(d), "--watch-namespaces=cams,garden ") {
			t.Errorf("%s args %q lack --watch-namespaces=cams,garden", d.Name, args(d))
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

// hasPort says whether the Deployment's container has a port of that name.
func hasPort(d *appsv1.Deployment, name string) bool {
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// access is one question to the API server's authorizer: may the subject do this?
type access struct {
	verb, group, resource, namespace, name string
	allowed                                bool
}

// checkAccess asks the API server, with a SubjectAccessReview, whether user may do each of
// cases, and fails the test for each answer that differs.
func checkAccess(t *testing.T, user string, cases []access) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range cases {
		review := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authv1.ResourceAttributes{
			Verb: tc.verb, Group: tc.group, Resource: strings.Split(tc.resource, "/")[0], Namespace: tc.namespace, Name: tc.name,
		}}}
		if parts := strings.Split(tc.resource, "/"); len(parts) == 2 {
			review.Spec.ResourceAttributes.Subresource = parts[1]
		}
		if err := env.Client.Create(ctx, review); err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != tc.allowed {
			t.Errorf("%s may %s %s/%s %q in %q: %v, want %v", user, tc.verb, tc.group, tc.resource, tc.name, tc.namespace, review.Status.Allowed, tc.allowed)
		}
	}
}

// TestChartInstalls runs helm install against the test API server, then asks the API server
// what the chart's ServiceAccounts may do.
func TestChartInstalls(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	notes := helm(t, "install", "cf", "charts/camfleet", "-n", ns)
	if !strings.Contains(notes, "kubectl label node <node> camfleet.io/camera-node=true") {
		t.Errorf("the install's notes do not say how to label camera nodes:\n%s", notes)
	}
	var ds appsv1.DaemonSet
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "camfleet-agent"}, &ds); err != nil {
		t.Fatalf("the chart's agent DaemonSet is not in the cluster: %v", err)
	}
	for _, name := range []string{"camfleet-controller", "camfleet-token-service"} {
		var deploy appsv1.Deployment
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &deploy); err != nil {
			t.Fatalf("the chart's Deployment %s is not in the cluster: %v", name, err)
		}
	}
	if out := helm(t, "list", "-n", ns, "-q"); strings.TrimSpace(out) != "cf" {
		t.Fatalf("helm list: %q", out)
	}
	checkAccess(t, "system:serviceaccount:"+ns+":camfleet-controller", []access{
		{"create", "", "secrets", "default", "", true},
		{"update", "", "secrets", "default", "", true},
		{"delete", "", "secrets", "default", "", false},
		{"update", "", "configmaps", "default", "", true},
		{"list", "camfleet.io", "tokenpolicies", "", "", true},
		{"patch", "camfleet.io", "tokenpolicies/status", "default", "", true},
		{"delete", "camfleet.io", "tokenpolicies", "default", "", false},
		{"create", "events.k8s.io", "events", "default", "", true},
		{"list", "", "pods", "default", "", false},
		{"get", "", "nodes", "", "", true},
		{"update", "", "nodes", "", "", false},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", false},
		{"update", "coordination.k8s.io", "leases", ns, "", true},
		{"update", "coordination.k8s.io", "leases", "default", "", false},
	})
	checkAccess(t, "system:serviceaccount:"+ns+":camfleet-agent", []access{
		{"list", "camfleet.io", "cameras", "", "", true},
		{"watch", "camfleet.io", "tokenpolicies", "", "", true},
		{"patch", "camfleet.io", "cameras/status", "default", "porch", true},
		{"create", "events.k8s.io", "events", "default", "", true},
		// Never signing material or anything it does not serve.
		{"get", "", "secrets", "default", "home-signing-keys", false},
		{"list", "", "secrets", "", "", false},
		{"get", "", "configmaps", "default", "home-jwks", false},
		{"list", "", "configmaps", "", "", false},
		{"update", "camfleet.io", "cameras", "default", "porch", false},
		{"patch", "camfleet.io", "tokenpolicies/status", "default", "home", false},
		{"create", "camfleet.io", "cameras", "default", "", false},
		{"list", "", "pods", "", "", false},
	})
	checkAccess(t, "system:serviceaccount:"+ns+":camfleet-token-service", []access{
		// What its caches need: TokenPolicies and the Secrets holding signing keys and
		// passwords. RBAC cannot narrow a list by label, so cluster-wide this is every
		// Secret; watchNamespaces confines it (TestTokenServiceRunsUnderItsOwnIdentity).
		{"list", "camfleet.io", "tokenpolicies", "", "", true},
		{"watch", "camfleet.io", "tokenpolicies", "", "", true},
		{"list", "", "secrets", "", "", true},
		{"watch", "", "secrets", "", "", true},
		// Its refresh sessions.
		{"get", "", "configmaps", "default", "home-sessions", true},
		{"create", "", "configmaps", "default", "", true},
		{"update", "", "configmaps", "default", "home-sessions", true},
		// Nothing else: no Secret written, no Secret fetched by name, no ConfigMap enumerated.
		{"get", "", "secrets", "kube-system", "bootstrap-token-abcdef", false},
		{"create", "", "secrets", "default", "", false},
		{"update", "", "secrets", "default", "home-signing-keys", false},
		{"patch", "", "secrets", "default", "home-signing-keys", false},
		{"delete", "", "secrets", "default", "home-signing-keys", false},
		{"list", "", "configmaps", "", "", false},
		{"watch", "", "configmaps", "", "", false},
		{"delete", "", "configmaps", "default", "home-sessions", false},
		{"patch", "", "configmaps", "default", "home-jwks", false},
		{"get", "camfleet.io", "tokenpolicies", "default", "home", false},
		{"update", "camfleet.io", "tokenpolicies", "default", "home", false},
		{"patch", "camfleet.io", "tokenpolicies/status", "default", "home", false},
		{"list", "camfleet.io", "accesstokens", "", "", false},
		{"list", "camfleet.io", "cameras", "", "", false},
		{"create", "events.k8s.io", "events", "default", "", false},
		{"update", "coordination.k8s.io", "leases", ns, "", false},
		{"list", "", "pods", "default", "", false},
	})
}

package chart

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"
)

// TestKustomizeInstallsWhatHelmDoes: kubectl apply -k config/default is the chart's default
// install (the same objects, rendered from the chart by make manifests, plus the CRDs and the
// namespace), and the API server accepts all of it.
func TestKustomizeInstallsWhatHelmDoes(t *testing.T) {
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(env.Kubectl(), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		cmd.Dir = env.RepoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	names := func(yamlDocs string) []string {
		var out []string
		for _, doc := range strings.Split(yamlDocs, "\n---\n") {
			var m manifest
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("a document does not parse: %v\n%s", err, doc)
			}
			if m.Kind != "" {
				out = append(out, m.Kind+" "+m.Metadata.Namespace+"/"+m.Metadata.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	kustomized := names(kubectl("kustomize", "config/default"))
	want := names(helm(t, "template", "camfleet", "charts/camfleet", "-n", "camfleet-system", "--kube-version", "1.37.2", "--skip-tests", "--include-crds"))
	want = append(want, "Namespace /camfleet-system")
	slices.Sort(want)
	if !slices.Equal(kustomized, want) {
		t.Errorf("kubectl kustomize config/default gives\n%s\nhelm template gives\n%s", strings.Join(kustomized, "\n"), strings.Join(want, "\n"))
	}
	ns := &corev1.Namespace{}
	ns.Name = "camfleet-system"
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	out := kubectl("apply", "-k", "config/default", "--dry-run=server")
	if !strings.Contains(out, "daemonset.apps/camfleet-agent") || !strings.Contains(out, "deployment.apps/camfleet-controller") {
		t.Errorf("kubectl apply -k config/default --dry-run=server:\n%s", out)
	}
}

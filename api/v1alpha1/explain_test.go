package v1alpha1_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestEveryFieldIsDocumented walks the served schemas: every field a user can set or read has
// a description, which is what kubectl explain shows; and kubectl explain prints it.
func TestEveryFieldIsDocumented(t *testing.T) {
	for _, plural := range []string{"cameras", "tokenpolicies", "accesstokens"} {
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: plural + ".camfleet.io"}, crd); err != nil {
			t.Fatal(err)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		root, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema")
		visited := 0
		var walk func(path string, s map[string]any)
		walk = func(path string, s map[string]any) {
			props, _ := s["properties"].(map[string]any)
			for name, p := range props {
				child := p.(map[string]any)
				field := path + "." + name
				visited++
				if strings.HasPrefix(field, ".metadata") || strings.HasPrefix(field, ".apiVersion") || strings.HasPrefix(field, ".kind") {
					continue
				}
				// Condition fields come from metav1.Condition and are documented there.
				if d, _ := child["description"].(string); strings.TrimSpace(d) == "" && !strings.Contains(field, ".conditions.") {
					t.Errorf("%s%s has no description", plural, field)
				}
				walk(field, child)
				if items, ok := child["items"].(map[string]any); ok {
					walk(field+"[]", items)
				}
			}
		}
		walk("", root)
		if visited < 20 {
			t.Errorf("%s: walked only %d fields; the walk is broken", plural, visited)
		}
	}
	explain := func(field, words string) {
		t.Helper()
		// The API server publishes a new CRD's OpenAPI schema a moment after the CRD is
		// established; kubectl explain reads that.
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := exec.Command(env.Kubectl(), "--kubeconfig", env.Kubeconfig, "explain", field).CombinedOutput()
			if err == nil && strings.Contains(string(out), words) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("kubectl explain %s (%v):\n%s", field, err, out)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	explain("camera.spec.nodeName", "the Kubernetes node the camera is attached to")
	explain("tokenpolicy.spec.rotation.publishAhead", "how long a new key is published before it signs")
}

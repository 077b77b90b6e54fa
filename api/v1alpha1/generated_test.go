package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates deepcopy code, CRDs and RBAC from the markers into a
// scratch directory and fails when any committed file differs: generated code must change in
// the same commit as the markers.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root := env.RepoRoot
	out, err := exec.Command(filepath.Join(root, "hack", "tools.sh"), "controller-gen").Output()
	if err != nil {
		t.Fatalf("hack/tools.sh controller-gen: %v", err)
	}
	gen := strings.TrimSpace(string(out))
	tmp := t.TempDir()
	cmd := exec.Command(gen,
		"object", "rbac:roleName=camfleet-controller", "crd",
		"paths=./api/...;./controllers/...",
		"output:object:dir="+filepath.Join(tmp, "object"),
		"output:crd:dir="+filepath.Join(tmp, "crd"),
		"output:rbac:dir="+filepath.Join(tmp, "rbac"))
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	agent := exec.Command(gen, "rbac:roleName=camfleet-agent", "paths=./agent/...", "output:rbac:dir="+filepath.Join(tmp, "agent-rbac"))
	agent.Dir = root
	if b, err := agent.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen for the agent: %v\n%s", err, b)
	}
	tokens := exec.Command(gen, "rbac:roleName=camfleet-token-service", "paths=./internal/issuer/...", "output:rbac:dir="+filepath.Join(tmp, "token-service-rbac"))
	tokens.Dir = root
	if b, err := tokens.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen for the token service: %v\n%s", err, b)
	}
	compare := func(generated, committed string) {
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, committed))
		if err != nil {
			t.Errorf("%s: %v (run make generate manifests)", committed, err)
			return
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what its markers generate: run make generate manifests and commit", committed)
		}
	}
	compare(filepath.Join(tmp, "object", "zz_generated.deepcopy.go"), "api/v1alpha1/zz_generated.deepcopy.go")
	compare(filepath.Join(tmp, "rbac", "role.yaml"), "config/rbac/role.yaml")
	compare(filepath.Join(tmp, "agent-rbac", "role.yaml"), "config/rbac/agent/role.yaml")
	compare(filepath.Join(tmp, "token-service-rbac", "role.yaml"), "config/rbac/token-service/role.yaml")
	crds, _ := filepath.Glob(filepath.Join(tmp, "crd", "*.yaml"))
	committed, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if len(crds) != 3 || len(committed) != len(crds) {
		t.Errorf("generated %d CRDs, committed %d; want 3 each", len(crds), len(committed))
	}
	for _, f := range crds {
		compare(f, filepath.Join("config", "crd", "bases", filepath.Base(f)))
	}
}

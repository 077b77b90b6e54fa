package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camfleet/camfleet/internal/testkit"
)

// TestCommandLine: --help, --version, and one clear line for each bad invocation.
func TestCommandLine(t *testing.T) {
	bin := testkit.Build(t, "", ".", name)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "-token-service-url"},
		{[]string{"--version"}, 0, "camfleet-agent v"},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{}, 2, "--node-name (or $NODE_NAME) is required"},
		{[]string{"--node-name", "pi", "--tls-cert-file", "x.pem"}, 2, "--tls-cert-file and --tls-key-file go together"},
		{[]string{"--node-name", "pi", "--default-token-policy", "a/b/c"}, 2, "want namespace/name"},
		{[]string{"--node-name", "pi", "--listen-address", "nowhere"}, 2, "--listen-address"},
		{[]string{"--prepare-state-dir", "nonroot"}, 2, "want uid:gid"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "NODE_NAME=", "KUBECONFIG=/nonexistent")
		out, _ := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
		if tc.code == 2 && strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("%v: error is more than one line: %q", tc.args, out)
		}
	}
}

// TestPrepareStateDir: the init container's job makes the state directory, private, for the
// given owner (here the test's own, since only root may give it away).
func TestPrepareStateDir(t *testing.T) {
	bin := testkit.Build(t, "", ".", name)
	dir := filepath.Join(t.TempDir(), "state", "camfleet")
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	if out, err := exec.Command(bin, "--state-dir", dir, "--prepare-state-dir", owner).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory %v, %v; want a directory with mode 0700", fi, err)
	}
}

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/camfleet/camfleet/internal/testkit"
)

// TestEveryCommandHasHelpWithExamples: kubectl users read --help first.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	for _, c := range []string{"status", "rotate", "token", "snapshot", "events", "stream", "verify"} {
		r := plugin(t, "", "", c, "--help")
		wantOK(t, r)
		if !strings.Contains(r.stdout, "Usage:\n  kubectl camfleet "+c) || !strings.Contains(r.stdout, "Examples:\n  # ") || !strings.Contains(r.stdout, "--kubeconfig") {
			t.Errorf("%s --help:\n%s", c, r.stdout)
		}
	}
	r := plugin(t, "", "", "--version")
	wantOK(t, r)
	if r.stdout != "kubectl-camfleet v0.0.0-dev\n" {
		t.Errorf("--version: %q", r.stdout)
	}
}

// TestErrorsAreOneLineWithTheirExitCode: bad usage exits 2, a failure 1, each with one line.
func TestErrorsAreOneLineWithTheirExitCode(t *testing.T) {
	ns := env.Namespace(t)
	dir := t.TempDir()
	// A kubeconfig whose API server is not there.
	dead := "https://" + testkit.FreeAddr(t)
	noServer := filepath.Join(dir, "dead.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["dead"] = &clientcmdapi.Cluster{Server: dead, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["dead"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["dead"] = &clientcmdapi.Context{Cluster: "dead", AuthInfo: "dead", Namespace: "cams"}
	cfg.CurrentContext = "dead"
	if err := clientcmd.WriteToFile(*cfg, noServer); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"an unknown command", []string{"reboot"}, exitUsage, `unknown command "reboot" for "kubectl camfleet" (see 'kubectl camfleet --help')`},
		{"an unknown flag", []string{"status", "--colour"}, exitUsage, "unknown flag: --colour (see 'kubectl camfleet status --help')"},
		{"an unknown output", []string{"status", "-o", "xml"}, exitUsage, `--output "xml": want json or yaml`},
		{"status takes no names", []string{"status", "porch"}, exitUsage, `unknown command "porch" for "kubectl camfleet status"`},
		{"rotate nothing", []string{"rotate"}, exitUsage, "name the token policy to rotate, or give --all"},
		{"rotate names and all", []string{"rotate", "home", "--all"}, exitUsage, "name policies or give --all, not both"},
		{"a timeout without waiting", []string{"rotate", "home", "--timeout", "1m"}, exitUsage, "--timeout applies only with --wait"},
		{"-A without --all", []string{"rotate", "home", "-A"}, exitUsage, "--all-namespaces goes with --all"},
		{"a malformed name", []string{"rotate", "a/b/c"}, exitUsage, `token policy "a/b/c": want NAME or NAMESPACE/NAME`},
		{"no such policy", []string{"rotate", "nope"}, exitFailure, "token policy nope not found in namespace " + ns},
		{"nothing to rotate", []string{"rotate", "--all"}, exitFailure, "no token policies in namespace " + ns},
		{"no policy to log in at", []string{"token", "--username", "alice"}, exitFailure, "no token policies in namespace " + ns},
		{"a kubeconfig that is not there", []string{"--kubeconfig", filepath.Join(dir, "nope"), "status"}, exitFailure, "kubeconfig " + filepath.Join(dir, "nope") + " does not exist"},
		{"no cluster", []string{"--kubeconfig", noServer, "status"}, exitFailure, "cannot reach the Kubernetes API server at " + dead + ": connection refused"},
		{"no such context", []string{"--context", "nope", "status"}, exitFailure, `context "nope" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, plugin(t, ns, "", tc.args...), tc.code, tc.want)
		})
	}

	// Without any kubeconfig, the plugin says so instead of trying localhost:8080.
	cmd := exec.Command(bin, "status")
	cmd.Env = append(cleanEnv(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure ||
		string(out) != "error: no cluster configured: no kubeconfig found (set KUBECONFIG or pass --kubeconfig)\n" {
		t.Errorf("without a kubeconfig: %v %q", err, out)
	}
}

// TestCompletesCommandsAndResourceNames: cobra's completion protocol, as the shell scripts
// (kubectl camfleet completion bash) and kubectl's plugin completion call it.
func TestCompletesCommandsAndResourceNames(t *testing.T) {
	f := newFleet(t, fleetOptions{Cameras: map[string]string{"porch": "a", "pond": "a"}, Agents: []string{"a"}})
	complete := func(args ...string) []string {
		t.Helper()
		r := plugin(t, f.ns, "", append([]string{"__complete"}, args...)...)
		wantOK(t, r)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasPrefix(l, ":") {
				out = append(out, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sn"}, "snapshot"},
		{[]string{"snapshot", "po"}, "pond porch"},
		{[]string{"events", "pon"}, "pond"},
		{[]string{"rotate", ""}, "home"},
		{[]string{"token", "--policy", ""}, "home"},
		{[]string{"status", "-o", ""}, "json yaml"},
		{[]string{"status", "-n", f.ns[:12]}, f.ns},
	} {
		if got := strings.Join(complete(tc.args...), " "); !strings.Contains(got, tc.want) {
			t.Errorf("completing %q: %q, want %q", tc.args, got, tc.want)
		}
	}

	if got := complete("snapshot", "porch", ""); len(got) != 0 {
		t.Errorf("completing a second camera: %q, want nothing", got)
	}

	// kubectl completes a plugin through kubectl_complete-<plugin>.
	link := filepath.Join(t.TempDir(), "kubectl_complete-camfleet")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "--kubeconfig", env.Kubeconfig, "-n", f.ns, "stream", "p")
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "porch\n") || !strings.Contains(string(out), "pond\n") {
		t.Errorf("kubectl_complete-camfleet: %v %q", err, out)
	}

	r := plugin(t, "", "", "completion", "bash")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "__start_kubectl-camfleet") {
		t.Errorf("completion bash does not define its function:\n%.300s", r.stdout)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camfleet/camfleet/internal/testenv"
	"github.com/camfleet/camfleet/internal/testkit"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// get polls url until it answers 200 or the context ends, and returns the body.
func get(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s never answered 200: %v", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestControllerStartsAgainstTheTestControlPlane runs the real binary: it becomes ready,
// serves metrics, and stops cleanly on SIGTERM.
func TestControllerStartsAgainstTheTestControlPlane(t *testing.T) {
	bin := testkit.Build(t, "", ".", name)
	metrics, probes, tokens := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", env.Kubeconfig, "--metrics-bind-address", metrics,
		"--health-probe-bind-address", probes, "--leader-elect", "--leader-election-namespace", "default",
		"--token-service-bind-address", tokens, "--token-service-url", "http://"+tokens)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("controller output:\n%s", logs.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	get(ctx, t, "http://"+probes+"/healthz")
	get(ctx, t, "http://"+probes+"/readyz")
	if h := get(ctx, t, "http://"+tokens+"/healthz"); !strings.Contains(h, `"ok":true`) {
		t.Errorf("token service /healthz: %s", h)
	}
	if m := get(ctx, t, "http://"+metrics+"/metrics"); !strings.Contains(m, "controller_runtime_") {
		t.Errorf("metrics endpoint serves no controller-runtime metrics")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("controller exited with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		t.Fatal("controller did not stop after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"Starting manager"`) {
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
		{[]string{"--help"}, 0, "-leader-elect", ""},
		{[]string{"--help"}, 0, "-token-service-bind-address", ""},
		{[]string{"--default-token-policy", "/nonamespace"}, 2, "", name + ": --default-token-policy \"/nonamespace\": want namespace/name, or a name for each namespace's policy of that name\n"},
		{[]string{"--help"}, 0, "-watch-namespaces", ""},
		{[]string{"--watch-namespaces", "cams,-bad-"}, 2, "", ""},
		{[]string{"--watch-namespaces", "cams", "--default-token-policy", "home/default"}, 2, "", name + ": --default-token-policy home/default: namespace \"home\" is not in --watch-namespaces\n"},
		{[]string{"--no-such-flag"}, 2, "", name + ": flag provided but not defined: -no-such-flag (see --help)\n"},
		{[]string{"--metrics-bind-address"}, 2, "", name + ": flag needs an argument: -metrics-bind-address (see --help)\n"},
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

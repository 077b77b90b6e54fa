// Package fleet tests the whole fleet as an operator installs it: the chart installed with
// helm on a simulated cluster of Raspberry Pi nodes (a real API server, the real scheduler and
// controller manager, and KWOK playing the kubelets), then the real controller, token service
// and agent binaries running under the identities the cluster gives the chart's pods.
package fleet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/camfleet/camfleet/internal/testenv"
	"github.com/camfleet/camfleet/internal/testkit"
)

var env *testenv.Env

// controlPlane is what runs beside the API server for the whole package: the scheduler, the
// controller manager (Deployments, ReplicaSets, DaemonSets, garbage collection) and KWOK, which
// makes the simulated nodes Ready and their pods Running.
var controlPlane []*process

func TestMain(m *testing.M) {
	// The admin client logs through controller-runtime; the components log into their buffers.
	ctrllog.SetLogger(logr.Discard())
	e, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet: start the API server:", err)
		os.Exit(1)
	}
	env = e
	code := 1
	if controlPlane, err = startControlPlane(e); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
	} else {
		code = m.Run()
	}
	for _, p := range controlPlane {
		p.stop()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- %s output (last lines):\n%s\n", p.name, tail(p.logs.String(), 60))
		}
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: stop:", err)
	}
	os.Exit(code)
}

// tool asks hack/tools.sh where a cached tool is and checks it is there.
func tool(root, name string) (string, error) {
	out, err := exec.Command(filepath.Join(root, "hack", "tools.sh"), "--print-"+name).Output()
	if err != nil {
		return "", fmt.Errorf("ask hack/tools.sh where %s is: %w", name, err)
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no %s at %s: run hack/tools.sh control-plane kwok (or make tools) first", name, path)
	}
	return path, nil
}

func startControlPlane(e *testenv.Env) ([]*process, error) {
	paths := map[string]string{}
	for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kwok", "kwok-stages"} {
		p, err := tool(e.RepoRoot, name)
		if err != nil {
			return nil, err
		}
		paths[name] = p
	}
	kc := "--kubeconfig=" + e.Kubeconfig
	specs := []struct {
		name string
		args []string
	}{
		{"kube-scheduler", []string{kc, "--leader-elect=false", "--secure-port=0"}},
		// Only the controllers the fleet needs. The node lifecycle controller lifts the
		// not-ready taint every new Node gets once KWOK reports it Ready, and watches the node
		// leases KWOK renews, as on a real cluster.
		{"kube-controller-manager", []string{kc, "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
			"--controllers=daemonset,deployment,replicaset,garbagecollector,serviceaccount,namespace,nodelifecycle"}},
		{"kwok", []string{kc, "--config=" + paths["kwok-stages"], "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake"}},
	}
	var started []*process
	for _, s := range specs {
		p, err := startProcess(s.name, paths[s.name], s.args...)
		if err != nil {
			for _, q := range started {
				q.stop()
			}
			return nil, err
		}
		started = append(started, p)
	}
	return started, nil
}

// process is a command the tests started, with everything it wrote.
type process struct {
	name string
	cmd  *exec.Cmd
	logs *testkit.LogBuffer
	done chan struct{}
	err  error
}

func startProcess(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), logs: &testkit.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// exited says whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop ends the process (SIGTERM, as the kubelet would) and waits for it.
func (p *process) stop() {
	if ok, _ := p.exited(); ok {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	<-p.done
}

// checkRunning is an error when a control-plane process has died, so a wait on what it should
// do fails at once with its output instead of timing out.
func checkRunning() error {
	var errs []error
	for _, p := range controlPlane {
		if ok, err := p.exited(); ok {
			errs = append(errs, fmt.Errorf("%s exited (%w):\n%s", p.name, err, tail(p.logs.String(), 20)))
		}
	}
	return errors.Join(errs...)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

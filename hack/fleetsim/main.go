// Command fleetsim measures a camfleet fleet at scale, for `make bench` (hack/bench-fleet.sh).
// For each fleet size it starts a fresh test control plane (kube-apiserver and etcd, as the
// tests do), installs the agent's ServiceAccount, RBAC and per-node write fence, a TokenPolicy,
// the Nodes and three test-pattern Cameras per node, runs the real camfleet-controller binary
// as its own process, and runs one agent per node in this process: the agent package's own
// node.Agent (key sync, the keyring that enforces tokens, cameras and status reports), each
// under a ServiceAccount token the API server bound to its Node. Then it measures a fleet-wide
// rotation, an emergency revoke, the steady-state load on the API server, and the controller's
// cold start, and writes the part "fleet" of the bench results.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/camfleet/camfleet/internal/testenv"
)

// result is what one fleet size measured.
type result struct {
	nodes, cameras int
	// install is how long creating the Nodes and Cameras took; start from starting the agents
	// to every Camera Ready with every agent on the active key.
	install, start time.Duration
	// rotations and revokes are repeated rounds, every agent's time in each.
	rotations      []rotation
	revokes        [][]time.Duration
	steady         time.Duration
	requestsPerSec float64
	// writesPerCameraMinute counts every Camera status write, the agents' and the controller's.
	writesPerCameraMinute float64
	eventsPerSec          float64
	coldStart             time.Duration
	// Peak resident memory in MiB: the controller over the whole run, the controller started
	// cold on the settled fleet, the API server, and this process (every agent).
	controllerPeak, controllerColdPeak, apiServerPeak, agentsPeak float64
}

func main() {
	sizes := flag.String("nodes", "50,200,1000", "comma-separated fleet sizes, in nodes")
	cameras := flag.Int("cameras", 3, "cameras per node")
	fps := flag.Int("fps", 1, "frame rate of each test-pattern camera")
	motion := flag.Bool("motion", false, "detect motion on every camera: off by default, since a real node detects on its own CPU while "+
		"here thousands of detectors would take a quarter of the cores the control plane shares (hack/bench-motion-vs-debian.sh measures the detector)")
	steady := flag.Duration("steady", 150*time.Second, "how long the steady-state load is measured: a multiple of the agents' 75 s heartbeat, so every camera's heartbeats fall into it equally often")
	rounds := flag.Int("rounds", 3, "rotations and revokes measured per fleet size")
	controllerBin := flag.String("controller", "bin/camfleet-controller", "the camfleet-controller binary")
	out := flag.String("out", "bin/bench", "directory of the bench results")
	logs := flag.String("logs", "", "directory for the controller's logs (default: a temporary one)")
	profiles := flag.String("profile", "", "write CPU profiles of the agents and of the API server over the first seconds of each rotation to this directory, to see where a rotation's time goes")
	followEtcd := flag.String("follow-etcd", "", "internal: follow --follow-key in this etcd and print its commits (the child process a rotation measures publication with)")
	followKey := flag.String("follow-key", "", "internal: the base64 etcd key for --follow-etcd")
	flag.Parse()
	if *followEtcd != "" {
		key, err := base64.StdEncoding.DecodeString(*followKey)
		if err != nil {
			fail(fmt.Errorf("--follow-key: %w", err))
		}
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		if err := follow(ctx, *followEtcd, key, os.Stdout); err != nil && ctx.Err() == nil {
			fail(err)
		}
		return
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))

	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("--nodes: %q is not a fleet size", s))
		}
		ns = append(ns, n)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	bin, err := filepath.Abs(*controllerBin)
	if err != nil {
		fail(err)
	}
	logDir := *logs
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "fleetsim-"); err != nil {
			fail(err)
		}
	}
	var results []result
	for _, n := range ns {
		progress("fleet of %d nodes, %d cameras each", n, *cameras)
		r, err := run(ctx, n, *cameras, int32(*fps), *motion, *steady, *rounds, bin, logDir, *profiles)
		if err != nil {
			fail(fmt.Errorf("fleet of %d nodes (controller logs in %s): %w", n, logDir, err))
		}
		results = append(results, r)
		report(r)
	}
	if err := buildPart(results, *cameras, *fps, *motion, *steady, *rounds).Save(*out, os.Stderr); err != nil {
		fail(err)
	}
}

// run measures one fleet size on its own control plane.
func run(ctx context.Context, n, cameras int, fps int32, motion bool, steady time.Duration, rounds int, controllerBin, logDir, profiles string) (r result, err error) {
	r.nodes, r.cameras = n, n*cameras
	env, err := testenv.Start()
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	f, err := newFleet(env, n, cameras, fps, motion)
	if err != nil {
		return r, err
	}
	if profiles != "" {
		f.profiler = &profiler{dir: profiles, api: env.Config}
	}
	t := time.Now()
	if err := f.install(ctx); err != nil {
		return r, err
	}
	r.install = time.Since(t)
	progress("installed %d Nodes and %d Cameras in %s", n, r.cameras, r.install.Round(time.Millisecond))

	logFile := filepath.Join(logDir, fmt.Sprintf("controller-%d.log", n))
	c, err := startController(controllerBin, env.Kubeconfig, freeAddr(), logFile)
	if err != nil {
		return r, err
	}
	defer func() { c.stop() }()
	stateRoot, err := os.MkdirTemp("", "fleetsim-state-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(stateRoot)
	t = time.Now()
	if err := f.startAgents(ctx, stateRoot); err != nil {
		return r, err
	}
	defer f.stopAgents()
	if r.start, err = await(ctx, 5*time.Minute+time.Duration(n)*300*time.Millisecond, time.Second, "every camera Ready", func() (bool, string, error) {
		return f.settled(ctx)
	}); err != nil {
		return r, err
	}
	r.start = time.Since(t)
	progress("%d agents started and every camera Ready in %s", n, r.start.Round(time.Millisecond))

	// Steady state: the start-up writes are over; count what the API server serves.
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(15 * time.Second):
	}
	a, err := countRequests(ctx, env.Config)
	if err != nil {
		return r, err
	}
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(steady):
	}
	b, err := countRequests(ctx, env.Config)
	if err != nil {
		return r, err
	}
	r.steady = b.at.Sub(a.at)
	r.requestsPerSec = (b.all - a.all) / r.steady.Seconds()
	r.writesPerCameraMinute = (b.statusWrites - a.statusWrites) / float64(r.cameras) / r.steady.Minutes()
	r.eventsPerSec = (b.events - a.events) / r.steady.Seconds()
	progress("steady state over %s: %.1f API requests/s, %.2f status writes per camera per minute", r.steady.Round(time.Second), r.requestsPerSec, r.writesPerCameraMinute)

	for i := range rounds {
		rot, err := f.rotate(ctx, fmt.Sprintf("bench-rotate-%d", i), fmt.Sprintf("%d-rotation-%d", n, i+1), 2*time.Minute)
		if err != nil {
			return r, err
		}
		r.rotations = append(r.rotations, rot)
		progress("rotation %d: published after %s, every agent enforcing after %s, AGENTS %d/%d after %s; after publication: %s", i+1, rot.published.Round(time.Millisecond),
			rot.enforcing[len(rot.enforcing)-1].Round(time.Millisecond), n, n, rot.allReported.Round(time.Millisecond), rot.spread())
	}
	for i := range rounds {
		rev, err := f.revoke(ctx, fmt.Sprintf("bench-revoke-%d", i), 2*time.Minute)
		if err != nil {
			return r, err
		}
		r.revokes = append(r.revokes, rev)
		progress("revoke %d: every agent refusing after %s", i+1, rev[len(rev)-1].Round(time.Millisecond))
	}

	// Cold start: the controller restarted on the settled fleet, with empty caches.
	if r.controllerPeak, err = c.peakRSS(); err != nil {
		return r, err
	}
	c.stop()
	if c, err = startController(controllerBin, env.Kubeconfig, freeAddr(), logFile); err != nil {
		return r, err
	}
	if _, err = await(ctx, 5*time.Minute, 50*time.Millisecond, "the restarted controller to reconcile everything", func() (bool, string, error) {
		return c.reconciledAll(ctx, r.cameras)
	}); err != nil {
		return r, err
	}
	r.coldStart = time.Since(c.started)
	if r.controllerColdPeak, err = c.peakRSS(); err != nil {
		return r, err
	}
	progress("controller cold start: everything reconciled %s after exec, peak RSS %.0f MiB", r.coldStart.Round(time.Millisecond), r.controllerColdPeak)
	pid, err := apiServerPID(env.Config)
	if err != nil {
		return r, err
	}
	if r.apiServerPeak, err = peakRSS(pid); err != nil {
		return r, err
	}
	if r.agentsPeak, err = peakRSS(os.Getpid()); err != nil {
		return r, err
	}
	return r, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fleetsim: "+format+"\n", args...)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fleetsim:", err)
	os.Exit(1)
}

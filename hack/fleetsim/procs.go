package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// sample is one Prometheus text-format sample: its labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

// scrape reads the samples of the named metric from a Prometheus text endpoint.
func scrape(ctx context.Context, hc *http.Client, u, metric string) ([]sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", u, resp.Status)
	}
	return parseSamples(resp.Body, metric)
}

// parseSamples is just enough of the text exposition format for counters and gauges: the
// label values these metrics carry hold no commas, quotes or braces.
func parseSamples(r io.Reader, metric string) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) {
			continue
		}
		rest := line[len(metric):]
		s := sample{labels: map[string]string{}}
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			for _, kv := range strings.Split(rest[1:end], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if ok {
					s.labels[k] = strings.Trim(v, `"`)
				}
			}
			rest = rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // another metric sharing the prefix
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", metric, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

func sum(ss []sample, match func(map[string]string) bool) float64 {
	var t float64
	for _, s := range ss {
		if match == nil || match(s.labels) {
			t += s.value
		}
	}
	return t
}

// apiRequests counts the API server's requests so far: all of them, the Camera status writes
// (PATCH and APPLY on cameras/status), and the Events written.
type apiRequests struct {
	all, statusWrites, events float64
	at                        time.Time
}

func countRequests(ctx context.Context, cfg *rest.Config) (apiRequests, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return apiRequests{}, err
	}
	ss, err := scrape(ctx, hc, strings.TrimSuffix(cfg.Host, "/")+"/metrics", "apiserver_request_total")
	if err != nil {
		return apiRequests{}, err
	}
	return apiRequests{
		at:  time.Now(),
		all: sum(ss, nil),
		statusWrites: sum(ss, func(l map[string]string) bool {
			return l["resource"] == "cameras" && l["subresource"] == "status" && (l["verb"] == "PATCH" || l["verb"] == "APPLY" || l["verb"] == "UPDATE")
		}),
		events: sum(ss, func(l map[string]string) bool {
			return l["resource"] == "events" && (l["verb"] == "POST" || l["verb"] == "PATCH")
		}),
	}, nil
}

// peakRSS is a process's peak resident set (VmHWM), in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// apiServerPID finds the kube-apiserver serving cfg.Host among this machine's processes.
func apiServerPID(cfg *rest.Config) (int, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return 0, err
	}
	flag := "--secure-port=" + u.Port()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "kube-apiserver" {
			continue
		}
		for _, a := range args {
			if a == flag {
				return strconv.Atoi(filepath.Base(d))
			}
		}
	}
	return 0, fmt.Errorf("no kube-apiserver with %s running", flag)
}

// controllerProc is the real camfleet-controller binary, run as its own process so its
// memory and start-up are its own.
type controllerProc struct {
	cmd     *exec.Cmd
	metrics string
	started time.Time
	exited  chan struct{}
}

func startController(bin, kubeconfig, metricsAddr, logFile string) (*controllerProc, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--metrics-bind-address", metricsAddr,
		"--health-probe-bind-address", "127.0.0.1:0", "--token-service-bind-address", "",
		"--token-service-url", "https://tokens.fleet.test")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &controllerProc{cmd: cmd, metrics: "http://" + metricsAddr + "/metrics", exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = cmd.Wait(); log.Close(); close(p.exited) }()
	return p, nil
}

func (p *controllerProc) peakRSS() (float64, error) { return peakRSS(p.cmd.Process.Pid) }

// stop ends the controller as Kubernetes would: SIGTERM, then SIGKILL after a grace period.
func (p *controllerProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// reconciledAll reports whether the controller has reconciled every Camera and the policy at
// least once since it started, with nothing left in its work queues: its reconcile counters
// reach the object counts (the queue holds each object once, so the first time it drains
// after that many reconciles, each object has had its turn).
func (p *controllerProc) reconciledAll(ctx context.Context, cameras int) (bool, string, error) {
	total, err := scrape(ctx, http.DefaultClient, p.metrics, "controller_runtime_reconcile_total")
	if err != nil {
		return false, err.Error(), nil // not serving yet
	}
	depth, err := scrape(ctx, http.DefaultClient, p.metrics, "workqueue_depth")
	if err != nil {
		return false, err.Error(), nil
	}
	byController := func(name string) func(map[string]string) bool {
		return func(l map[string]string) bool { return l["controller"] == name || l["name"] == name }
	}
	cams := sum(total, byController("camera"))
	pols := sum(total, byController("tokenpolicy"))
	queued := sum(depth, byController("camera")) + sum(depth, byController("tokenpolicy"))
	ok := cams >= float64(cameras) && pols >= 1 && queued == 0
	return ok, fmt.Sprintf("camera reconciles %.0f of %d, policy reconciles %.0f, queued %.0f", cams, cameras, pols, queued), nil
}

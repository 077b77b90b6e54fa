package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/camfleet/camfleet/internal/benchresult"
)

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// quantiles of every agent's time in one round: p50, p99 and max, in seconds.
func quantiles(ds []time.Duration) (p50, p99, max float64) {
	s := secs(ds)
	slices.Sort(s)
	return benchresult.Quantile(s, 0.5), benchresult.Quantile(s, 0.99), s[len(s)-1]
}

// rounds summarises one figure over the repeated rounds: min/median/max.
func rounds[T any](xs []T, f func(T) float64) benchresult.Stats {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return benchresult.Summarize(v)
}

func cell(s benchresult.Stats, decimals int) string {
	if s.N <= 1 {
		return benchresult.F(s.Median, decimals)
	}
	return fmt.Sprintf("%s (%s–%s)", benchresult.F(s.Median, decimals), benchresult.F(s.Min, decimals), benchresult.F(s.Max, decimals))
}

// afterPublication is the last agent's time counted from the key's publication.
func afterPublication(r rotation) float64 {
	return (r.enforcing[len(r.enforcing)-1] - r.published).Seconds()
}

func buildPart(results []result, cameras, fps int, motion bool, steady time.Duration, nRounds int) benchresult.Part {
	p := benchresult.Part{
		Name:    "fleet",
		Title:   "Fleet simulation",
		Command: "hack/bench-fleet.sh    # NODES=50,200,1000 STEADY=150s ROUNDS=3",
		Method: fmt.Sprintf("For each fleet size, a fresh kube-apiserver and etcd; the real camfleet-controller binary as its own process; "+
			"one agent per node in one process, each the agent package's node.Agent (key sync, keyring enforcement, %d test-pattern cameras at %d fps "+
			"with their scripted object crossing once an hour, a fleet watching still scenes, %s, "+
			"status reports) under a ServiceAccount token bound to its Node, with the chart's RBAC and the per-node write fence in force. "+
			"Times are from the rotate annotation, median of %d rounds with (min–max) in brackets; an agent's time is when its keyring loaded the new material (looked for every %s); "+
			"a key's publication is when the policy's status holding it commits, seen through etcd's own watch. "+
			"Steady state is counted from the API server's apiserver_request_total over %s after every Camera is Ready. "+
			"Cold start: the controller restarted on the settled fleet, from exec until its reconcile counters cover every Camera and the policy and its queues are empty. "+
			"The baseline of each ratio is the smallest fleet, measured in the same run.", cameras, fps, detection(motion), nRounds, pollEvery, steady),
	}
	rot := benchresult.Table{Title: "Rotation and revoke, seconds from the annotation",
		Columns: []string{"nodes", "key published", "agents enforcing p50", "p99", "max", "max after publication", "AGENTS N/N", "revoke: refusing p50", "p99", "max"}}
	load := benchresult.Table{Title: "Load and memory",
		Columns: []string{"nodes", "cameras", "start to all Ready (s)", "API requests/s", "status writes per camera per minute", "Events/s", "controller cold start (s)",
			"controller peak MiB (whole run / cold start)", "API server peak MiB", "agents' process peak MiB (per agent)"}}
	ratio := benchresult.Table{Title: "Against the smallest fleet in the same run",
		Columns: []string{"nodes", "× nodes", "× last agent enforcing", "× revoke max", "× API requests/s", "× controller cold start", "× controller peak MiB"}}
	plot := benchresult.Plot{File: "fleet-rotation.svg", Title: "Rotation convergence", Kind: benchresult.Lines,
		XLabel: "seconds since the rotate annotation", YLabel: "agents enforcing the new key (fraction)"}
	var base *result
	for i := range results {
		r := &results[i]
		if base == nil {
			base = r
		}
		p50 := func(rt rotation) float64 { a, _, _ := quantiles(rt.enforcing); return a }
		p99 := func(rt rotation) float64 { _, b, _ := quantiles(rt.enforcing); return b }
		mx := func(rt rotation) float64 { _, _, c := quantiles(rt.enforcing); return c }
		rp50 := func(d []time.Duration) float64 { a, _, _ := quantiles(d); return a }
		rp99 := func(d []time.Duration) float64 { _, b, _ := quantiles(d); return b }
		rmx := func(d []time.Duration) float64 { _, _, c := quantiles(d); return c }
		rot.Rows = append(rot.Rows, []string{fmt.Sprint(r.nodes),
			cell(rounds(r.rotations, func(rt rotation) float64 { return rt.published.Seconds() }), 2),
			cell(rounds(r.rotations, p50), 2), cell(rounds(r.rotations, p99), 2), cell(rounds(r.rotations, mx), 2),
			cell(rounds(r.rotations, afterPublication), 2),
			cell(rounds(r.rotations, func(rt rotation) float64 { return rt.allReported.Seconds() }), 2),
			cell(rounds(r.revokes, rp50), 2), cell(rounds(r.revokes, rp99), 2), cell(rounds(r.revokes, rmx), 2)})
		load.Rows = append(load.Rows, []string{fmt.Sprint(r.nodes), fmt.Sprint(r.cameras), benchresult.F(r.start.Seconds(), 1),
			benchresult.F(r.requestsPerSec, 1), benchresult.F(r.writesPerCameraMinute, 2), benchresult.F(r.eventsPerSec, 2), benchresult.F(r.coldStart.Seconds(), 2),
			fmt.Sprintf("%.0f / %.0f", r.controllerPeak, r.controllerColdPeak), benchresult.F(r.apiServerPeak, 0),
			fmt.Sprintf("%.0f (%.2f)", r.agentsPeak, r.agentsPeak/float64(r.nodes))})
		x := func(a, b float64) string { return benchresult.F(a/b, 2) + "x" }
		ratio.Rows = append(ratio.Rows, []string{fmt.Sprint(r.nodes), x(float64(r.nodes), float64(base.nodes)),
			x(rounds(r.rotations, mx).Median, rounds(base.rotations, mx).Median),
			x(rounds(r.revokes, rmx).Median, rounds(base.revokes, rmx).Median),
			x(r.requestsPerSec, base.requestsPerSec), x(r.coldStart.Seconds(), base.coldStart.Seconds()),
			x(r.controllerPeak, base.controllerPeak)})

		// The median round by its last agent, drawn as the share of agents holding the key.
		ordered := slices.Clone(r.rotations)
		slices.SortFunc(ordered, func(a, b rotation) int { return int(mx(a)*1e6 - mx(b)*1e6) })
		med := ordered[len(ordered)/2]
		s := benchresult.Series{Name: fmt.Sprintf("%d nodes", r.nodes), X: []float64{0}, Y: []float64{0}}
		for j, t := range secs(med.enforcing) {
			s.X = append(s.X, t)
			s.Y = append(s.Y, float64(j+1)/float64(len(med.enforcing)))
		}
		plot.Series = append(plot.Series, s)
	}
	p.Tables = []benchresult.Table{rot, load, ratio}
	p.Plots = []benchresult.Plot{plot}

	big := results[len(results)-1]
	for _, r := range results {
		if r.nodes >= 1000 {
			big = r
			break
		}
	}
	at := fmt.Sprintf(" (%d nodes)", big.nodes)
	worst := rounds(big.rotations, afterPublication).Max
	p.Targets = []benchresult.Target{
		{What: "every agent enforcing a new key after its publication" + at, Want: "within 2 s", Got: fmt.Sprintf("%.2f s, worst of %d rounds", worst, len(big.rotations)), Met: worst <= 2},
		{What: "steady-state Camera status writes" + at, Want: "under 1 per camera per minute", Got: benchresult.F(big.writesPerCameraMinute, 2), Met: big.writesPerCameraMinute < 1},
		{What: "controller cold start, everything reconciled" + at, Want: "under 60 s", Got: benchresult.F(big.coldStart.Seconds(), 1) + " s", Met: big.coldStart < time.Minute},
		{What: "controller peak memory" + at, Want: "under 300 MiB", Got: fmt.Sprintf("%.0f MiB (cold start %.0f MiB)", big.controllerPeak, big.controllerColdPeak),
			Met: big.controllerPeak < 300 && big.controllerColdPeak < 300},
	}
	return p
}

func report(r result) {
	fmt.Fprintf(os.Stderr, "fleetsim: %d nodes: start %s, %.1f req/s, %.2f writes/camera/min, cold start %s, controller %.0f/%.0f MiB, API server %.0f MiB, agents %.0f MiB\n",
		r.nodes, r.start.Round(time.Second), r.requestsPerSec, r.writesPerCameraMinute, r.coldStart.Round(time.Millisecond),
		r.controllerPeak, r.controllerColdPeak, r.apiServerPeak, r.agentsPeak)
}

func detection(on bool) string {
	if on {
		return "motion detection on"
	}
	return "motion detection off: a real node detects on its own CPU, and here it would share the control plane's cores"
}

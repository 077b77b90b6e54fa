// Command gobench turns the text output of `go test -bench` (the format benchstat reads) into
// one benchmark part of `make bench` (internal/benchresult):
//
//	gobench -part gobench -in bin/bench/gobench.txt -out bin/bench -command hack/bench-go.sh
//	gobench -part token -in token.txt -out bin/bench -command hack/bench-token.sh
//	gobench -part motionengine -in motion.txt -out bin/bench -command hack/bench-motion.sh
//
// The token and motionengine inputs hold several rounds, each running every benchmark once
// (-test.count=1) in a fixed order; the n-th result of a benchmark belongs to round n, and
// ratios are taken within a round, so that each subject is compared with a baseline measured
// seconds before it on the same shared, noisy machine.
//
// It parses the format itself rather than with golang.org/x/perf/benchfmt: that module's
// requirements (cloud storage, SQL drivers, plotting) would enter the project's module graph
// and move golang.org/x/net, for a dozen lines of parsing.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/camfleet/camfleet/internal/benchresult"
)

func main() {
	part := flag.String("part", "gobench", "part to write: gobench, token or motionengine")
	in := flag.String("in", "", "go test -bench output to read (default standard input)")
	out := flag.String("out", "bin/bench", "results directory")
	command := flag.String("command", "", "the command that measures this part alone, for the part's Command")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gobench: ")

	r := io.Reader(os.Stdin)
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		r = f
	}
	results, err := parse(r)
	if err != nil {
		log.Fatalf("read benchmark results: %v", err)
	}
	if len(results) == 0 {
		log.Fatal("no benchmark results in the input")
	}
	var p benchresult.Part
	switch *part {
	case "gobench":
		p = gobenchPart(results, *in)
	case "token":
		p, err = tokenPart(results)
	case "motionengine":
		p, err = motionPart(results)
	default:
		err = fmt.Errorf("unknown part %q", *part)
	}
	if err != nil {
		log.Fatal(err)
	}
	p.Command = *command
	if err := p.Save(*out, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// result is one line of benchmark output.
type result struct {
	Pkg  string
	Name string // without the -GOMAXPROCS suffix
	// Values maps a unit (ns/op, B/op, allocs/op, custom ones) to its value.
	Values map[string]float64
}

var procsSuffix = regexp.MustCompile(`-[0-9]+$`)

// parse reads the standard benchmark format: "pkg:" configuration lines and lines of a name,
// an iteration count and value-unit pairs.
func parse(r io.Reader) ([]result, error) {
	var (
		out []result
		pkg string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue // a benchmark's own log line, not a result
		}
		res := result{Pkg: pkg, Name: procsSuffix.ReplaceAllString(f[0], ""), Values: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("value %q of %s: %w", f[i], f[0], err)
			}
			res.Values[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// series gathers the values of one unit by benchmark, in input order, and the benchmarks'
// order of first appearance.
type series struct {
	order []string
	by    map[string][]result
}

func group(results []result, key func(result) string) series {
	s := series{by: map[string][]result{}}
	for _, r := range results {
		k := key(r)
		if _, ok := s.by[k]; !ok {
			s.order = append(s.order, k)
		}
		s.by[k] = append(s.by[k], r)
	}
	return s
}

func values(rs []result, unit string) []float64 {
	var out []float64
	for _, r := range rs {
		if v, ok := r.Values[unit]; ok {
			out = append(out, v)
		}
	}
	return out
}

func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}

// perRound divides the n-th value of num by the n-th of den, for every round both have.
func perRound(num, den []float64) []float64 {
	var out []float64
	for i := range min(len(num), len(den)) {
		out = append(out, num[i]/den[i])
	}
	return out
}

func gobenchPart(results []result, in string) benchresult.Part {
	s := group(results, func(r result) string { return r.Pkg + " " + r.Name })
	t := benchresult.Table{Columns: []string{"package", "benchmark", "runs", "min ns/op", "median ns/op", "max ns/op", "B/op (max)", "allocs/op (max)"}}
	for _, k := range s.order {
		rs := s.by[k]
		ns := benchresult.Summarize(values(rs, "ns/op"))
		row := []string{strings.TrimPrefix(rs[0].Pkg, "github.com/camfleet/camfleet/"), strings.TrimPrefix(rs[0].Name, "Benchmark"), strconv.Itoa(ns.N)}
		row = append(row, ns.Cells(1)...)
		row = append(row, benchresult.F(maxOf(values(rs, "B/op")), 0), benchresult.F(maxOf(values(rs, "allocs/op")), 0))
		t.Rows = append(t.Rows, row)
	}
	raw := "gobench.txt"
	if in != "" {
		raw = in
	}
	return benchresult.Part{
		Name:  "gobench",
		Title: "Go benchmarks of the hot paths",
		Method: "One `go test -bench` benchmark per hot path (token verification, permission match, motion step, " +
			"stream fan-out, key reload), run with -count and -benchmem. The raw output is kept as " + raw +
			", the input for benchstat: compare a later change with `benchstat old.txt new.txt`. " +
			"Absolute times depend on the machine and its load; only compare runs from the same machine.",
		Tables: []benchresult.Table{t},
	}
}

const (
	edBaseline = "BenchmarkEd25519VerifyBaseline"
	edVerify   = "BenchmarkVerifyEdDSA"
	edCached   = "BenchmarkVerifyCached"
	ackAuth    = "BenchmarkAckRequest/auth"
	ackNoAuth  = "BenchmarkAckRequest/noauth"
)

func tokenPart(results []result) (benchresult.Part, error) {
	s := group(results, func(r result) string { return r.Name })
	for _, name := range []string{edBaseline, edVerify, edCached} {
		if len(s.by[name]) == 0 {
			return benchresult.Part{}, fmt.Errorf("no %s results in the input", name)
		}
	}
	p := benchresult.Part{
		Name:  "token",
		Title: "Token check and the agent's request path",
		Method: "internal/token's benchmarks on one core (-test.cpu=1), the test binary built once and run in " +
			"interleaved rounds (baseline, uncached, cached; baseline, uncached, cached; ...), so that each " +
			"verification is compared with crypto/ed25519.Verify alone on the same signing input measured " +
			"seconds before it. The request path (hack/requestbench) serves the agent's real API handler " +
			"(api.Server.Handler: access log, routing, bearer token verified through the keyring's cache, " +
			"permission check, event ack) on a loopback listener, and keep-alive clients POST /api/ack with " +
			"a valid token each; its baseline is the same route on the same kind of mux and listener with " +
			"a handler that decodes the same body and writes the same response, without authentication. " +
			"The clients run in a child process, so requests per CPU-second count the server's user+system " +
			"time alone (getrusage over the interval); the two handlers alternate within every round.",
	}

	base, verify, cached := values(s.by[edBaseline], "ns/op"), values(s.by[edVerify], "ns/op"), values(s.by[edCached], "ns/op")
	t := benchresult.Table{Title: "Verification, per token", Columns: []string{"benchmark", "runs", "min ns/op", "median ns/op", "max ns/op", "B/op (max)", "allocs/op (max)"}}
	for _, name := range []string{edBaseline, edVerify, edCached} {
		st := benchresult.Summarize(values(s.by[name], "ns/op"))
		row := append([]string{strings.TrimPrefix(name, "Benchmark"), strconv.Itoa(st.N)}, st.Cells(1)...)
		row = append(row, benchresult.F(maxOf(values(s.by[name], "B/op")), 0), benchresult.F(maxOf(values(s.by[name], "allocs/op")), 0))
		t.Rows = append(t.Rows, row)
	}
	ratio := benchresult.Summarize(perRound(verify, base))
	rt := benchresult.Table{Title: "Ratios within a round", Columns: []string{"ratio", "rounds", "min", "median", "max"}}
	rt.Rows = append(rt.Rows, append([]string{"uncached EdDSA / ed25519.Verify", strconv.Itoa(ratio.N)}, ratio.Cells(3)...))
	p.Tables = append(p.Tables, t)

	cachedSt := benchresult.Summarize(cached)
	cachedAllocs := maxOf(values(s.by[edCached], "allocs/op"))
	p.Targets = append(p.Targets,
		benchresult.Target{What: "uncached EdDSA verification against crypto/ed25519.Verify alone, median of per-round ratios",
			Want: "<= 1.30x", Got: benchresult.F(ratio.Median, 3) + "x (min " + benchresult.F(ratio.Min, 3) + ", max " + benchresult.F(ratio.Max, 3) + ")", Met: ratio.Median <= 1.30},
		benchresult.Target{What: "cached verification of a repeated token, median",
			Want: "< 2000 ns", Got: benchresult.F(cachedSt.Median, 1) + " ns (max " + benchresult.F(cachedSt.Max, 1) + ")", Met: cachedSt.Median < 2000},
		benchresult.Target{What: "cached verification allocations",
			Want: "0 allocs/op", Got: benchresult.F(cachedAllocs, 0) + " allocs/op (max over runs)", Met: cachedAllocs == 0},
	)

	if len(s.by[ackAuth]) > 0 && len(s.by[ackNoAuth]) > 0 {
		at := benchresult.Table{Title: "POST /api/ack over loopback with keep-alive", Columns: []string{"handler", "rounds", "min req/s", "median req/s", "max req/s", "min req/CPU-s", "median req/CPU-s", "max req/CPU-s"}}
		for _, v := range []struct{ name, label string }{{ackNoAuth, "no auth (baseline)"}, {ackAuth, "agent's API, token verified"}} {
			rps := benchresult.Summarize(values(s.by[v.name], "req/s"))
			cpu := benchresult.Summarize(values(s.by[v.name], "req/cpu-s"))
			row := append([]string{v.label, strconv.Itoa(rps.N)}, rps.Cells(0)...)
			at.Rows = append(at.Rows, append(row, cpu.Cells(0)...))
		}
		p.Tables = append(p.Tables, at)
		perCPU := benchresult.Summarize(perRound(values(s.by[ackAuth], "req/cpu-s"), values(s.by[ackNoAuth], "req/cpu-s")))
		perSec := benchresult.Summarize(perRound(values(s.by[ackAuth], "req/s"), values(s.by[ackNoAuth], "req/s")))
		rt.Rows = append(rt.Rows,
			append([]string{"/api/ack requests per CPU-second, agent / no auth", strconv.Itoa(perCPU.N)}, perCPU.Cells(3)...),
			append([]string{"/api/ack requests per second, agent / no auth", strconv.Itoa(perSec.N)}, perSec.Cells(3)...))
		p.Notes = append(p.Notes, "The request path has no target of its own: the table shows what authentication costs "+
			"a whole request, where the token is checked through the cache as every request after a client's first is.")
	}
	p.Tables = append(p.Tables, rt)
	return p, nil
}

func motionPart(results []result) (benchresult.Part, error) {
	s := group(results, func(r result) string { return strings.TrimPrefix(r.Name, "Benchmark") })
	p := benchresult.Part{
		Name:  "motionengine",
		Title: "Motion engine",
		Method: "agent/motion's benchmarks on one core (-test.cpu=1), per frame: the engine (Detector.ObserveYUYV, " +
			"Detector.ObserveJPEG) against a baseline on the same frames (YUYV: the byte-at-a-time luma " +
			"reduction; MJPEG: image/jpeg decoding of the whole frame and its Y plane), both followed by the " +
			"same grid and detection. The test binary is built once and run in interleaved rounds, each " +
			"running every benchmark once, and each ratio baseline/engine is taken within a round.",
	}
	t := benchresult.Table{Title: "Per frame", Columns: []string{"benchmark", "runs", "min ms/frame", "median ms/frame", "max ms/frame", "allocs/frame (max)"}}
	rt := benchresult.Table{Title: "Ratio baseline/engine within a round", Columns: []string{"input", "rounds", "min", "median", "max"}}
	engineAllocs := 0.0
	for _, name := range s.order {
		ns := values(s.by[name], "ns/op")
		ms := make([]float64, len(ns))
		for i, v := range ns {
			ms[i] = v / 1e6
		}
		st := benchresult.Summarize(ms)
		allocs := maxOf(values(s.by[name], "allocs/op"))
		t.Rows = append(t.Rows, append(append([]string{name, strconv.Itoa(st.N)}, st.Cells(3)...), benchresult.F(allocs, 0)))

		input, ok := strings.CutSuffix(name, "/engine")
		if !ok {
			continue
		}
		engineAllocs = max(engineAllocs, allocs)
		if input == "YUYV/640x480" {
			p.Targets = append(p.Targets, benchresult.Target{What: "YUYV 640x480 per frame on one core, median",
				Want: "< 0.2 ms", Got: benchresult.F(st.Median, 3) + " ms (max " + benchresult.F(st.Max, 3) + ")", Met: st.Median < 0.2})
		}
		baseline := s.by[input+"/baseline"]
		if len(baseline) == 0 {
			continue
		}
		r := benchresult.Summarize(perRound(values(baseline, "ns/op"), ns))
		rt.Rows = append(rt.Rows, append([]string{input, strconv.Itoa(r.N)}, r.Cells(1)...))
		if strings.HasPrefix(input, "MJPEG/") {
			p.Targets = append(p.Targets, benchresult.Target{What: input + ": image/jpeg baseline / engine, median of per-round ratios",
				Want: ">= 4x", Got: benchresult.F(r.Median, 1) + "x (min " + benchresult.F(r.Min, 1) + ")", Met: r.Median >= 4})
		}
	}
	if len(rt.Rows) == 0 {
		return p, fmt.Errorf("no engine/baseline pairs in the motion benchmark results")
	}
	p.Targets = append(p.Targets, benchresult.Target{What: "engine allocations per frame, every input", Want: "0 allocs/op",
		Got: benchresult.F(engineAllocs, 0) + " allocs/op (max over runs)", Met: engineAllocs == 0})
	p.Tables = []benchresult.Table{t, rt}
	p.Notes = []string{"go test -bench shows a few B/op for the engine: that is the first frame sizing the reused " +
		"buffers, divided over the iterations; TestSteadyStateAllocatesNothing checks that later frames allocate nothing."}
	return p, nil
}

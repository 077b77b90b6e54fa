package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/camfleet/camfleet/internal/benchresult"
)

const (
	// target is the agent's CPU per frame as a share of motion's, from DESIGN.md.
	target = 0.5
	// The textured stream stands for a real camera: its frames must be this size.
	minFrameKB, maxFrameKB = 60, 100
	// rssAimMiB is the agent's memory aim with three cameras and ten stream clients.
	rssAimMiB = 64
)

// memoryCheck is the agent's peak resident memory with several cameras and clients.
type memoryCheck struct {
	PeakKiB, Clients, Cameras, Seconds int
}

func loadMemory(path string) (memoryCheck, error) {
	rows, err := readTSV(path)
	if err != nil {
		return memoryCheck{}, err
	}
	var m memoryCheck
	for key, dst := range map[string]*int{"peak_kib": &m.PeakKiB, "clients": &m.Clients, "cameras": &m.Cameras, "seconds": &m.Seconds} {
		if *dst, err = strconv.Atoi(first(rows[key])); err != nil {
			return memoryCheck{}, fmt.Errorf("%s: %s: %w", path, key, err)
		}
	}
	return m, nil
}

// scenes lists the streams in runs, plain first.
func scenes(runs []run) []string {
	var out []string
	for _, r := range runs {
		if !slices.Contains(out, r.Scene) {
			out = append(out, r.Scene)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return strings.Compare(a, b) })
	return out
}

func of(runs []run, scene string) []run {
	var out []run
	for _, r := range runs {
		if r.Scene == scene {
			out = append(out, r)
		}
	}
	return out
}

// ratios are the shares compared, as (name, numerator, denominator) of process keys.
var ratios = []struct{ name, num, den string }{
	{"camfleet-agent / motion + stream (like for like; the target)", "agent", "motionstream"},
	{"camfleet-agent / motion", "agent", "motion"},
	{"camfleet-motion / motion", "camfleet", "motion"},
}

func ratioStats(rs []run, num, den string) benchresult.Stats {
	var xs []float64
	for _, r := range rs {
		if d := r.msPerFrame(den); d > 0 {
			xs = append(xs, r.msPerFrame(num)/d)
		}
	}
	return benchresult.Summarize(xs)
}

func msStats(rs []run, key string) benchresult.Stats {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, r.msPerFrame(key))
	}
	return benchresult.Summarize(xs)
}

// runTable has one row per run, stream and process.
func runTable(runs []run) benchresult.Table {
	t := benchresult.Table{
		Title:   "CPU per frame, every run",
		Columns: []string{"stream", "run", "process", "frames", "fps", "CPU ms", "CPU ms/frame", "x motion", "x motion + stream"},
	}
	for _, r := range runs {
		for _, p := range processes {
			c := r.CPU[p.key]
			ms := float64(c.Ticks) * 1000 / float64(r.Hz)
			vsM, vsS := "", ""
			if p.key != "motion" {
				vsM = benchresult.F(r.msPerFrame(p.key)/r.msPerFrame("motion"), 3)
			}
			if p.key == "agent" || p.key == "camfleet" {
				vsS = benchresult.F(r.msPerFrame(p.key)/r.msPerFrame("motionstream"), 3)
			}
			t.Rows = append(t.Rows, []string{r.Scene, strconv.Itoa(r.N), p.name, strconv.FormatInt(c.Frames, 10),
				benchresult.F(float64(c.Frames)/r.Duration, 1), benchresult.F(ms, 0), benchresult.F(r.msPerFrame(p.key), 3), vsM, vsS})
		}
	}
	return t
}

// detectTable sums each detector's events over the runs, with each run's figure after it.
func detectTable(runs []run) benchresult.Table {
	t := benchresult.Table{
		Title:   "Events against the stream's script of motion (total, then each run)",
		Columns: []string{"stream", "detector", "events in moving phases", "false events in still phases", "moving phases with an event"},
	}
	for _, scene := range scenes(runs) {
		rs := of(runs, scene)
		for _, p := range processes {
			var mv, st, cov, ph []int
			for _, r := range rs {
				d := r.Detect[p.key]
				mv, st, cov, ph = append(mv, d.Moving), append(st, d.Still), append(cov, d.Covered), append(ph, d.Phases)
			}
			phases := fmt.Sprintf("%d/%d", sum(cov), sum(ph))
			if len(rs) > 1 {
				var each []string
				for i := range cov {
					each = append(each, fmt.Sprintf("%d/%d", cov[i], ph[i]))
				}
				phases += " (" + strings.Join(each, ", ") + ")"
			}
			t.Rows = append(t.Rows, []string{scene, p.name, perRun(mv), perRun(st), phases})
		}
	}
	return t
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// perRun is "total (run 1, run 2, ...)", or the total alone for one run.
func perRun(xs []int) string {
	s := strconv.Itoa(sum(xs))
	if len(xs) > 1 {
		each := make([]string, len(xs))
		for i, x := range xs {
			each[i] = strconv.Itoa(x)
		}
		s += " (" + strings.Join(each, ", ") + ")"
	}
	return s
}

func buildPart(runs []run, mem *memoryCheck, notes []string) benchresult.Part {
	nRuns := len(of(runs, runs[0].Scene))
	c := runs[0].Clip
	p := benchresult.Part{
		Name:    "motion",
		Title:   "The whole agent against Debian's motion",
		Command: "hack/bench-motion-vs-debian.sh",
		Method: fmt.Sprintf("hack/mjpegserve serves a generated 640x480 %d fps MJPEG stream on loopback, in two scenes: plain (smooth, synthetic) "+
			"and textured (fine texture and sensor noise, frames the size of a real camera's). Each %d s loop is %d s of an empty scene, "+
			"then a block crossing it. On each stream, side by side, run Debian's %s twice (detecting only; detecting and serving its "+
			"MJPEG stream to one client), camfleet-motion (the engine alone) and the whole camfleet-agent (a Camera behind a local control "+
			"plane and the controller, motion on, one MJPEG stream client with a token). CPU is utime+stime from /proc/PID/stat over the "+
			"same %.0f s interval after a warm-up; frames are what the server sent each client in it. Ratios are CPU per frame against "+
			"motion's in the same run; min/median/max over %s, the streams interleaved. Events are each detector's event start "+
			"times (motion's on_event_start hook, the agent's events API, camfleet-motion's printed start frames) placed on the "+
			"server's timeline of phases for that client.",
			c.FPS, c.Frames/c.FPS, c.StillFrames/c.FPS, runs[0].Motion, runs[0].Duration, runsText(nRuns)),
	}

	streams := benchresult.Table{Title: "Streams", Columns: []string{"stream", "mean frame size (KB)", "loop (s)", "still phase (s)", "moving phase (s)"}}
	for _, scene := range scenes(runs) {
		c := of(runs, scene)[0].Clip
		streams.Rows = append(streams.Rows, []string{scene, benchresult.F(float64(c.MeanBytes)/1000, 1),
			benchresult.F(float64(c.Frames)/float64(c.FPS), 1), benchresult.F(float64(c.StillFrames)/float64(c.FPS), 1),
			benchresult.F(float64(c.Frames-c.StillFrames)/float64(c.FPS), 1)})
	}

	ms := benchresult.Table{Title: fmt.Sprintf("CPU ms per frame, min/median/max of %s", runsText(nRuns)), Columns: []string{"stream", "process", "min", "median", "max"}}
	rt := benchresult.Table{Title: fmt.Sprintf("Ratios of CPU per frame, min/median/max of %s", runsText(nRuns)), Columns: []string{"stream", "ratio", "min", "median", "max"}}
	plot := benchresult.Plot{
		File: "motion-cpu.svg", Title: "CPU per frame on the same 640x480 30 fps stream (median of runs)",
		Kind: benchresult.Bars, YLabel: "CPU ms per frame", Categories: scenes(runs),
	}
	for _, proc := range processes {
		s := benchresult.Series{Name: proc.name}
		for _, scene := range scenes(runs) {
			s.Y = append(s.Y, msStats(of(runs, scene), proc.key).Median)
		}
		plot.Series = append(plot.Series, s)
	}
	for _, scene := range scenes(runs) {
		rs := of(runs, scene)
		for _, proc := range processes {
			ms.Rows = append(ms.Rows, append([]string{scene, proc.name}, msStats(rs, proc.key).Cells(3)...))
		}
		for _, q := range ratios {
			rt.Rows = append(rt.Rows, append([]string{scene, q.name}, ratioStats(rs, q.num, q.den).Cells(3)...))
		}
		st := ratioStats(rs, "agent", "motionstream")
		p.Targets = append(p.Targets, benchresult.Target{
			What: fmt.Sprintf("camfleet-agent CPU per frame / motion's with a stream client, %s stream", scene),
			Want: fmt.Sprintf("at most %.1f (median of runs)", target),
			Got:  fmt.Sprintf("%s (min %s, max %s; %s)", benchresult.F(st.Median, 3), benchresult.F(st.Min, 3), benchresult.F(st.Max, 3), runsText(st.N)),
			Met:  st.N > 0 && st.Median <= target,
		})
	}
	for _, scene := range scenes(runs) {
		if scene != "textured" {
			continue
		}
		kb := float64(of(runs, scene)[0].Clip.MeanBytes) / 1000
		p.Targets = append(p.Targets, benchresult.Target{
			What: "Textured stream's mean frame size, like a real camera's",
			Want: fmt.Sprintf("%d-%d KB", minFrameKB, maxFrameKB),
			Got:  benchresult.F(kb, 1) + " KB",
			Met:  kb >= minFrameKB && kb <= maxFrameKB,
		})
	}
	for _, proc := range processes {
		met, moving, still, cov, ph := true, 0, 0, 0, 0
		for _, r := range runs {
			d := r.Detect[proc.key]
			met = met && d.Moving >= 1 && d.Still == 0
			moving, still, cov, ph = moving+d.Moving, still+d.Still, cov+d.Covered, ph+d.Phases
		}
		p.Targets = append(p.Targets, benchresult.Target{
			What: proc.name + " detects the scripted motion",
			Want: "in every run on both streams: at least 1 event in the moving phases, none in the still phases",
			Got:  fmt.Sprintf("%d events in moving phases, %d in still phases; %d of %d moving phases with an event", moving, still, cov, ph),
			Met:  met,
		})
	}

	p.Tables = []benchresult.Table{runTable(runs), detectTable(runs), streams, ms, rt}
	if mem != nil {
		mib := float64(mem.PeakKiB) / 1024
		p.Tables = append(p.Tables, benchresult.Table{
			Title:   "Agent memory",
			Columns: []string{"cameras (textured)", "stream clients", "seconds", "peak RSS (MiB)"},
			Rows:    [][]string{{strconv.Itoa(mem.Cameras), strconv.Itoa(mem.Clients), strconv.Itoa(mem.Seconds), benchresult.F(mib, 1)}},
		})
		p.Targets = append(p.Targets, benchresult.Target{
			What: fmt.Sprintf("camfleet-agent peak RSS with %d VGA cameras and %d stream clients", mem.Cameras, mem.Clients),
			Want: fmt.Sprintf("under %d MiB", rssAimMiB),
			Got:  benchresult.F(mib, 1) + " MiB",
			Met:  mib < rssAimMiB,
		})
	}
	p.Plots = []benchresult.Plot{plot}
	p.Notes = append([]string{
		fmt.Sprintf("CPU time is read in clock ticks of %s ms, so over %.0f s each CPU figure is within a few per cent.",
			benchresult.F(1000/float64(runs[0].Hz), 0), runs[0].Duration),
		fmt.Sprintf("An event counts for a moving phase if it starts in it or up to %v after it ends (a detector reports a frame after "+
			"it was sent and needs a few frames of motion); one starting later in a still phase is a false event. Every detector's event "+
			"gap is shorter than the still phase, so each pass of the block is its own event.", margin),
		"Fewer frames than the stream's rate mean the machine was busy and the server was held back; all clients alike.",
		"The ratio depends on the machine (how fast motion's code runs on it): compare rows within one run.",
	}, notes...)
	return p
}

func runsText(n int) string {
	if n == 1 {
		return "1 run"
	}
	return strconv.Itoa(n) + " runs"
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The processes measured, as hack/bench-motion-vs-debian.sh names them in cpu.tsv and as
// clients of the stream server.
var processes = []struct{ key, name string }{
	{"motion", "Debian motion"},
	{"motionstream", "motion + stream"},
	{"agent", "camfleet-agent"},
	{"camfleet", "camfleet-motion"},
}

// cpu is one process's share of one run's measured interval.
type cpu struct {
	Frames int64
	Ticks  int64
}

// clip is mjpegserve's /clip.
type clip struct {
	Frames      int `json:"frames"`
	FPS         int `json:"fps"`
	StillFrames int `json:"stillFrames"`
	MeanBytes   int `json:"meanBytes"`
}

// run is everything the script collected in one run on one stream.
type run struct {
	Scene    string
	N        int
	Hz       int64
	Duration float64 // seconds of the measured interval
	Motion   string  // Debian motion's version
	CPU      map[string]cpu
	Clip     clip
	// Detect is how each process's events fell against its timeline.
	Detect map[string]detection
}

// margin is how long after a moving phase ends an event may still start and count for it:
// a detector reports a frame some time after it was sent, and needs a few frames of motion.
const margin = time.Second

func loadRun(dir string) (run, error) {
	info, err := readTSV(filepath.Join(dir, "info.tsv"))
	if err != nil {
		return run{}, err
	}
	r := run{Scene: first(info["scene"]), Motion: first(info["motion"]), CPU: map[string]cpu{}, Detect: map[string]detection{}}
	if r.N, err = strconv.Atoi(first(info["run"])); err != nil {
		return run{}, fmt.Errorf("%s: run number: %w", dir, err)
	}
	if r.Hz, err = strconv.ParseInt(first(info["hz"]), 10, 64); err != nil || r.Hz <= 0 {
		return run{}, fmt.Errorf("%s: clock ticks per second %q: %w", dir, first(info["hz"]), err)
	}
	if r.Duration, err = strconv.ParseFloat(first(info["duration"]), 64); err != nil {
		return run{}, fmt.Errorf("%s: duration: %w", dir, err)
	}
	rows, err := readTSV(filepath.Join(dir, "cpu.tsv"))
	if err != nil {
		return run{}, err
	}
	for _, p := range processes {
		v := rows[p.key]
		if len(v) != 2 {
			return run{}, fmt.Errorf("%s: cpu.tsv has no frames and ticks for %s", dir, p.key)
		}
		var c cpu
		if c.Frames, err = strconv.ParseInt(v[0], 10, 64); err != nil {
			return run{}, fmt.Errorf("%s: %s frames: %w", dir, p.key, err)
		}
		if c.Ticks, err = strconv.ParseInt(v[1], 10, 64); err != nil {
			return run{}, fmt.Errorf("%s: %s ticks: %w", dir, p.key, err)
		}
		r.CPU[p.key] = c
	}
	if err := readJSON(filepath.Join(dir, "clip.json"), &r.Clip); err != nil {
		return run{}, err
	}
	if r.Clip.FPS <= 0 {
		return run{}, fmt.Errorf("%s: clip.json has no frame rate", dir)
	}
	timelines := map[string][]phase{}
	for _, p := range processes {
		var tl []phase
		if err := readJSON(filepath.Join(dir, "phases-"+p.key+".json"), &tl); err != nil {
			return run{}, err
		}
		// The script notes when it read a detector's events if the detector went on running
		// after that (the agent): phases begun later cannot have had their events counted.
		if v := first(info["end_"+p.key]); v != "" {
			end, err := parseUnix(v)
			if err != nil {
				return run{}, fmt.Errorf("%s: end_%s: %w", dir, p.key, err)
			}
			tl = slices.DeleteFunc(tl, func(ph phase) bool { return ph.Time.After(end) })
		}
		timelines[p.key] = tl
	}
	for _, key := range []string{"motion", "motionstream"} {
		times, err := readHookTimes(filepath.Join(dir, "events-"+key+".txt"))
		if err != nil {
			return run{}, err
		}
		r.Detect[key] = byTime(timelines[key], times, margin)
	}
	starts, err := readAgentEvents(filepath.Join(dir, "agent-events.json"))
	if err != nil {
		return run{}, err
	}
	r.Detect["agent"] = byTime(timelines["agent"], starts, margin)
	frames, err := readCamfleetEvents(filepath.Join(dir, "camfleet.out"))
	if err != nil {
		return run{}, err
	}
	r.Detect["camfleet"] = byFrame(timelines["camfleet"], frames, int64(margin.Seconds()*float64(r.Clip.FPS)))
	return r, nil
}

// msPerFrame is a process's CPU milliseconds per frame it was sent.
func (r run) msPerFrame(key string) float64 {
	c := r.CPU[key]
	if c.Frames == 0 {
		return 0
	}
	return float64(c.Ticks) * 1000 / float64(r.Hz) / float64(c.Frames)
}

// readTSV reads lines of tab-separated fields into a map from the first field to the rest.
func readTSV(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string][]string{}
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if len(f) > 0 && f[0] != "" {
			out[f[0]] = f[1:]
		}
	}
	return out, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// readHookTimes reads the times motion's on_event_start hook wrote, one `date +%s.%N` a
// line. A missing file means the hook never ran: no events.
func readHookTimes(path string) ([]time.Time, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read motion's events: %w", err)
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		t, err := parseUnix(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// parseUnix reads `date +%s.%N`: seconds since 1970 with up to nine decimals.
func parseUnix(v string) (time.Time, error) {
	sec, frac, _ := strings.Cut(strings.TrimSpace(v), ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", v, err)
	}
	ns, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", v, err)
	}
	return time.Unix(s, ns), nil
}

// readAgentEvents reads the start times from the agent's /api/cameras/.../events.
func readAgentEvents(path string) ([]time.Time, error) {
	var resp struct {
		Events []struct {
			Start time.Time `json:"start"`
		} `json:"events"`
	}
	if err := readJSON(path, &resp); err != nil {
		return nil, err
	}
	out := make([]time.Time, len(resp.Events))
	for i, e := range resp.Events {
		out[i] = e.Start
	}
	return out, nil
}

// readCamfleetEvents reads the start frames of camfleet-motion's printed events
// ("event start=N end=M ...").
func readCamfleetEvents(path string) ([]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read camfleet-motion's events: %w", err)
	}
	var out []int64
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "event start=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, " ")
		f, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: event start %q: %w", path, n, err)
		}
		out = append(out, f)
	}
	return out, nil
}

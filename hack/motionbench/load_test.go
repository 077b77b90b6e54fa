package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadRunReadsWhatTheScriptWrites builds a run directory in the script's formats and
// checks the figures and the placing of each detector's events.
func TestLoadRunReadsWhatTheScriptWrites(t *testing.T) {
	dir := t.TempDir()
	// Phases at 10:00:00 (still), :05 (moving), :10 (still), :15 (moving), :20 (still).
	tl := `[{"moving":false,"time":"2026-12-02T10:00:00Z","frame":0,"conn":1},
	{"moving":true,"time":"2026-12-02T10:00:05Z","frame":150,"conn":1},
	{"moving":false,"time":"2026-12-02T10:00:10Z","frame":300,"conn":1},
	{"moving":true,"time":"2026-12-02T10:00:15Z","frame":450,"conn":1},
	{"moving":false,"time":"2026-12-02T10:00:20Z","frame":600,"conn":1}]`
	files := map[string]string{
		// The agent's events were read at :14, before the second moving phase.
		"info.tsv":                 "scene\ttextured\nrun\t2\nhz\t100\nduration\t20\nmotion\tmotion 4.5.1\nend_agent\t1796205614.5\n",
		"cpu.tsv":                  "motion\t600\t120\nmotionstream\t600\t180\ncamfleet\t600\t30\nagent\t600\t60\n",
		"clip.json":                `{"frames":300,"fps":30,"stillFrames":150,"meanBytes":90000}`,
		"phases-motion.json":       tl,
		"phases-motionstream.json": tl,
		"phases-camfleet.json":     tl,
		"phases-agent.json":        tl,
		"events-motion.txt":        "1796205605.3\n1796205615.25\n",
		"events-motionstream.txt":  "1796205605.3\n1796205612.5\n", // :12.5 is 2.5 s into a still phase
		"camfleet.out":             "event start=152 end=299 frames=148 peak=160 peak-area=50 box=0,333,1000,251\nevent start=455 end=600\n",
		"agent-events.json":        `{"camera":"bench/cam","events":[{"id":2,"start":"2026-12-02T10:00:05.2Z"},{"id":1,"start":"2026-12-02T09:59:00Z"}]}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := loadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Scene != "textured" || r.N != 2 || r.Motion != "motion 4.5.1" {
		t.Errorf("run = %s %d %s", r.Scene, r.N, r.Motion)
	}
	if got := r.msPerFrame("agent"); got != 1 {
		t.Errorf("agent ms per frame = %v, want 1 (60 ticks of 10 ms over 600 frames)", got)
	}
	want := map[string]detection{
		"motion":       {Moving: 2, Covered: 2, Phases: 2},
		"motionstream": {Moving: 1, Still: 1, Covered: 1, Phases: 2},
		"camfleet":     {Moving: 2, Covered: 2, Phases: 2},
		// Cut at :14.5: one finished moving phase; the event from another run is left out.
		"agent": {Moving: 1, Covered: 1, Phases: 1},
	}
	for key, w := range want {
		if got := r.Detect[key]; got != w {
			t.Errorf("%s: %+v, want %+v", key, got, w)
		}
	}
}

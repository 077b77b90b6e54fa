package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camfleet/camfleet/internal/benchresult"
)

func TestSpliceKeepsWhatIsWrittenByHand(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"first run: before the first section", "# B\n\nIntro.\n\n## Old\n\nkept\n",
			"# B\n\nIntro.\n\n" + beginMarker + "\nNEW\n" + endMarker + "\n\n## Old\n\nkept\n"},
		{"later runs: only between the markers", "# B\n\n" + beginMarker + "\nOLD\n" + endMarker + "\n\n## Old\n",
			"# B\n\n" + beginMarker + "\nNEW\n" + endMarker + "\n\n## Old\n"},
		{"no section: at the end", "# B\n\nIntro.", "# B\n\nIntro.\n\n" + beginMarker + "\nNEW\n" + endMarker + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := splice(tc.doc, "NEW\n"); got != tc.want {
				t.Errorf("splice:\n%s\nwant:\n%s", got, tc.want)
			}
			if got := splice(splice(tc.doc, "NEW\n"), "NEW\n"); got != tc.want {
				t.Errorf("a second splice changed the document:\n%s", got)
			}
		})
	}
}

// TestRunWritesResultsTablesAndFigures: two parts in, the results file, the figures and the
// document's section out, with the parts in the documented order.
func TestRunWritesResultsTablesAndFigures(t *testing.T) {
	dir := t.TempDir()
	in, figs, doc := filepath.Join(dir, "in"), filepath.Join(dir, "docs", "bench"), filepath.Join(dir, "docs", "benchmarks.md")
	parts := []benchresult.Part{
		{Name: "token", Title: "Token check", Command: "hack/bench-token.sh",
			Tables:  []benchresult.Table{{Columns: []string{"a", "b|c"}, Rows: [][]string{{"1", "2"}}}},
			Targets: []benchresult.Target{{What: "cached", Want: "< 2 µs", Got: "49 ns", Met: true}}},
		{Name: "fleet", Title: "Fleet simulation", Command: "hack/bench-fleet.sh",
			Plots: []benchresult.Plot{{File: "rotation.svg", Title: "Rotation", Kind: benchresult.Lines, YLabel: "fraction",
				Series: []benchresult.Series{{Name: "50 nodes", X: []float64{0, 0.2, 0.3}, Y: []float64{0, 0.5, 1}}}}},
			Targets: []benchresult.Target{{What: "enforcing", Want: "2 s", Got: "3 s", Met: false}}},
		{Name: "motion", Title: "Motion", Command: "x",
			Plots: []benchresult.Plot{{File: "cpu.png", Title: "CPU", Kind: benchresult.Bars, YLabel: "ms", Categories: []string{"plain", "textured"},
				Series: []benchresult.Series{{Name: "motion", Y: []float64{1.2, 3.1}}, {Name: "agent", Y: []float64{0.4, 1.1}}}}}},
	}
	for _, p := range parts {
		if err := p.Write(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nIntro.\n\n## By hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, doc, figs); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rotation.svg", "cpu.png", "results.json"} {
		if st, err := os.Stat(filepath.Join(figs, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	b, _ := os.ReadFile(doc)
	md := string(b)
	fleet, motion, token := strings.Index(md, "### Fleet simulation"), strings.Index(md, "### Motion"), strings.Index(md, "### Token check")
	if fleet < 0 || fleet >= motion || motion >= token {
		t.Errorf("parts missing or out of order (fleet %d, motion %d, token %d):\n%s", fleet, motion, token, md)
	}
	for _, want := range []string{"![Rotation](bench/rotation.svg)", "| a | b\\|c |", "| Fleet simulation | enforcing | 2 s | 3 s | **no** |", "## By hand"} {
		if !strings.Contains(md, want) {
			t.Errorf("document lacks %q:\n%s", want, md)
		}
	}
	bad := benchresult.Part{Name: "bad", Plots: []benchresult.Plot{{File: "x.svg", Kind: benchresult.Bars, Categories: []string{"a"}, Series: []benchresult.Series{{Name: "s", Y: []float64{1, 2}}}}}}
	if err := bad.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := run(in, doc, figs); err == nil || !strings.Contains(err.Error(), "2 values for 1 categories") {
		t.Errorf("a bar series not matching its categories: %v", err)
	}
}

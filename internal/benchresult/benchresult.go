// Package benchresult is the machine-readable form of what `make bench` measures: each
// benchmark program writes one Part (its tables, plots and targets) as JSON into the results
// directory, and hack/benchreport merges the parts into docs/bench/results.json, the tables of
// docs/benchmarks.md and the plots. A Part carries finished tables rather than raw samples so
// that the program that measured a figure is the one that says what it means.
package benchresult

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Part is one benchmark's results.
type Part struct {
	// Name is a short file-safe name, such as fleet or fanout; it names the JSON file.
	Name string `json:"name"`
	// Title heads the part's section in docs/benchmarks.md.
	Title string `json:"title"`
	// Command measures this part alone.
	Command string `json:"command"`
	// Method says in a few sentences what is measured against which baseline.
	Method string `json:"method,omitempty"`
	// Finished is when the measurement ended.
	Finished time.Time `json:"finished"`
	Tables   []Table   `json:"tables,omitempty"`
	Plots    []Plot    `json:"plots,omitempty"`
	Targets  []Target  `json:"targets,omitempty"`
	// Notes are sentences worth reading beside the tables (what was noisy, what was left out).
	Notes []string `json:"notes,omitempty"`
}

// Table is a finished table of text cells.
type Table struct {
	Title   string     `json:"title,omitempty"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Plot kinds.
const (
	// Lines draws each series as a line through its (X, Y) points.
	Lines = "lines"
	// Bars draws one group of bars per category, one bar per series; Series[i].Y[j] is the
	// bar of series i in category j.
	Bars = "bars"
)

// Plot is a figure hack/benchreport draws into docs/bench.
type Plot struct {
	// File is the figure's file name under docs/bench, such as rotation.svg.
	File       string   `json:"file"`
	Title      string   `json:"title"`
	Kind       string   `json:"kind"`
	XLabel     string   `json:"xLabel,omitempty"`
	YLabel     string   `json:"yLabel"`
	Categories []string `json:"categories,omitempty"`
	Series     []Series `json:"series"`
}

// Series is one line or one set of bars.
type Series struct {
	Name string    `json:"name"`
	X    []float64 `json:"x,omitempty"`
	Y    []float64 `json:"y"`
}

// Target is a goal from an issue or DESIGN.md and what this run measured against it.
type Target struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Write stores p as dir/<name>.json.
func (p Part) Write(dir string) error {
	if p.Name == "" {
		return fmt.Errorf("a benchmark part needs a name")
	}
	if p.Finished.IsZero() {
		p.Finished = time.Now().UTC()
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s results: %w", p.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, p.Name+".json"), append(b, '\n'), 0o644)
}

// Save writes p as dir/<name>.json, then tells w which targets it met and where it went, for
// the log of the bench script that ran it.
func (p Part) Save(dir string, w io.Writer) error {
	if err := p.Write(dir); err != nil {
		return err
	}
	for _, t := range p.Targets {
		state := "MET"
		if !t.Met {
			state = "NOT MET"
		}
		fmt.Fprintf(w, "target: %s: want %s, got %s: %s\n", t.What, t.Want, t.Got, state)
	}
	_, err := fmt.Fprintf(w, "wrote %s\n", filepath.Join(dir, p.Name+".json"))
	return err
}

// ReadDir reads every part in dir, ordered by name.
func ReadDir(dir string) ([]Part, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var parts []Part
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var p Part
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// Stats are the minimum, median and maximum of repeated measurements.
type Stats struct {
	N                int
	Min, Median, Max float64
}

// Summarize gives the Stats of xs (zero Stats for none).
func Summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Stats{N: len(s), Min: s[0], Median: Quantile(s, 0.5), Max: s[len(s)-1]}
}

// Quantile is the q-quantile (0..1) of sorted xs by linear interpolation between the closest
// ranks; NaN for none.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// F formats x with the given number of decimals, for table cells.
func F(x float64, decimals int) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

// Cells formats s as three cells: min, median, max.
func (s Stats) Cells(decimals int) []string {
	return []string{F(s.Min, decimals), F(s.Median, decimals), F(s.Max, decimals)}
}

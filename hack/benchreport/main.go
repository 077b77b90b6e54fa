// Command benchreport turns the parts `make bench` measured (JSON files of package
// internal/benchresult) into the results file docs/bench/results.json, the generated section
// of docs/benchmarks.md, and the figures under docs/bench, drawn with gonum/plot.
//
//	go run ./hack/benchreport -in bin/bench
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/camfleet/camfleet/internal/benchresult"
)

// Results is the machine-readable file of one `make bench` run.
type Results struct {
	Generated time.Time          `json:"generated"`
	Machine   Machine            `json:"machine"`
	Parts     []benchresult.Part `json:"parts"`
}

// Machine says where the figures were measured.
type Machine struct {
	CPU   string `json:"cpu"`
	Cores int    `json:"cores"`
	Go    string `json:"go"`
	OS    string `json:"os"`
}

// order is the order of the parts in the document; parts not named here follow by name.
var order = []string{"fleet", "motion", "fanout", "token", "motionengine", "gobench"}

func main() {
	in := flag.String("in", "bin/bench", "directory of the parts")
	doc := flag.String("doc", "docs/benchmarks.md", "the document whose generated section is rewritten")
	figures := flag.String("figures", "docs/bench", "directory of the figures and results.json")
	flag.Parse()
	if err := run(*in, *doc, *figures); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(in, doc, figures string) error {
	parts, err := benchresult.ReadDir(in)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("no results in %s: run make bench", in)
	}
	sortParts(parts)
	res := Results{Generated: time.Now().UTC().Truncate(time.Second), Machine: machine(), Parts: parts}
	if err := os.MkdirAll(figures, 0o755); err != nil {
		return err
	}
	for _, p := range parts {
		for _, pl := range p.Plots {
			if err := draw(pl, filepath.Join(figures, pl.File)); err != nil {
				return fmt.Errorf("plot %s of %s: %w", pl.File, p.Name, err)
			}
		}
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(figures, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	old, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(doc), figures)
	if err != nil {
		return err
	}
	return os.WriteFile(doc, []byte(splice(string(old), render(res, filepath.ToSlash(rel)))), 0o644)
}

func sortParts(parts []benchresult.Part) {
	rank := func(name string) int {
		if i := slices.Index(order, name); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(parts, func(a, b benchresult.Part) int {
		if d := rank(a.Name) - rank(b.Name); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

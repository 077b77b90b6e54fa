// Command motionbench turns the raw figures hack/bench-motion-vs-debian.sh collects into
// tables: CPU per frame of Debian's motion, camfleet-motion and the whole camfleet-agent on
// the same stream, their ratios, and how each detector's events fell against the stream's
// script of motion. The script stays the entry point; this program only reads its files.
//
//	motionbench run RUNDIR                             # print one run
//	motionbench part -out DIR [-memory FILE] RUNDIR... # write the "motion" part, print a summary
//
// A RUNDIR holds one run on one stream: info.tsv (scene, run, hz, duration, motion), cpu.tsv
// (process, frames, ticks), clip.json and phases-PROCESS.json from the stream server,
// events-motion.txt and events-motionstream.txt (motion's on_event_start times),
// camfleet.out (camfleet-motion's output) and agent-events.json (the agent's events API).
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/camfleet/camfleet/internal/benchresult"
)

func main() {
	if err := command(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "motionbench: %v\n", err)
		os.Exit(1)
	}
}

func command(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("want a command: run or part")
	}
	switch args[0] {
	case "run":
		if len(args) != 2 {
			return fmt.Errorf("run: want one RUNDIR")
		}
		r, err := loadRun(args[1])
		if err != nil {
			return err
		}
		printTable(stdout, runTable([]run{r}))
		printTable(stdout, detectTable([]run{r}))
		return nil
	case "part":
		fs := flag.NewFlagSet("part", flag.ContinueOnError)
		out := fs.String("out", "bin/bench", "directory to write motion.json into")
		memory := fs.String("memory", "", "the agent memory check's memory.tsv (peak_kib, clients, cameras, seconds)")
		var notes multiFlag
		fs.Var(&notes, "note", "a sentence to add to the part's notes; repeat for several")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var runs []run
		for _, dir := range fs.Args() {
			r, err := loadRun(dir)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		if len(runs) == 0 {
			return fmt.Errorf("part: no runs given")
		}
		// By stream, then run: a shell glob puts run 10 before run 2.
		slices.SortStableFunc(runs, func(a, b run) int {
			return cmp.Or(strings.Compare(a.Scene, b.Scene), cmp.Compare(a.N, b.N))
		})
		var mem *memoryCheck
		if *memory != "" {
			m, err := loadMemory(*memory)
			if err != nil {
				return err
			}
			mem = &m
		}
		p := buildPart(runs, mem, notes)
		for _, t := range p.Tables[2:] { // the per-run tables were printed as the runs went
			printTable(stdout, t)
		}
		if err := p.Save(*out, stdout); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q: want run or part", args[0])
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// printTable writes t with aligned columns, for the terminal.
func printTable(w io.Writer, t benchresult.Table) {
	widths := make([]int, len(t.Columns))
	for _, row := range append([][]string{t.Columns}, t.Rows...) {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], len(c))
			}
		}
	}
	if t.Title != "" {
		fmt.Fprintf(w, "%s\n", t.Title)
	}
	for _, row := range append([][]string{t.Columns}, t.Rows...) {
		var b strings.Builder
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			fmt.Fprintf(&b, "%-*s", widths[min(i, len(widths)-1)], c)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w)
}

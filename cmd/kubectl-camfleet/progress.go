package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/camfleet/camfleet/internal/fleet"
)

// progressView shows a rotation's progress: on a terminal one bar of the agents holding the
// new keys, redrawn in place; elsewhere (a pipe, a CI log) one line whenever a policy's
// progress changes, so the log reads as a history.
type progressView struct {
	w    io.Writer
	bar  *progressbar.ProgressBar
	last map[string]string
	// room is how much of the terminal's width the description may take: a line longer than
	// the terminal wraps, and the bar can no longer redraw itself in place.
	room int
}

// barOverhead is what the bar takes beside its description: " 100% |<20>|  [59m59s] ".
const barOverhead = 42

// newProgressView draws a bar when width > 0 (the terminal's width), lines otherwise.
func newProgressView(w io.Writer, width int) *progressView {
	v := &progressView{w: w, last: map[string]string{}, room: max(width-barOverhead, 20)}
	if width > 0 {
		v.bar = progressbar.NewOptions64(1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(20),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionSetDescription("waiting for the controller"),
			progressbar.OptionShowDescriptionAtLineEnd(),
		)
	}
	return v
}

func (v *progressView) update(ps []fleet.Progress) {
	if v.bar == nil {
		for _, p := range ps {
			if line := p.Line(); v.last[p.Policy] != line {
				v.last[p.Policy] = line
				fmt.Fprintln(v.w, line)
			}
		}
		return
	}
	loaded, total := agentCounts(ps)
	v.bar.Describe(truncate(barDescription(ps, loaded, total), v.room))
	v.bar.ChangeMax64(int64(max(total, 1)))
	_ = v.bar.Set64(int64(loaded))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// finish ends the bar and leaves each policy's last state as a line, so the terminal keeps a
// record of how the rotation ended.
func (v *progressView) finish(ps []fleet.Progress) {
	if v.bar == nil {
		return
	}
	_ = v.bar.Exit()
	fmt.Fprintln(v.w)
	for _, p := range ps {
		fmt.Fprintln(v.w, p.Line())
	}
}

// agentCounts sums the agents holding the new keys over every policy. A policy done with no
// reporting agent counts as one of one, so the bar fills when everything is done.
func agentCounts(ps []fleet.Progress) (loaded, total int) {
	for _, p := range ps {
		switch {
		case p.Phase == fleet.PhaseDone && p.Total == 0:
			loaded, total = loaded+1, total+1
		case p.Phase == fleet.PhaseRequested:
			total += max(p.Total, 1)
		default:
			loaded, total = loaded+p.Loaded, total+p.Total
		}
	}
	return loaded, total
}

func barDescription(ps []fleet.Progress, loaded, total int) string {
	if len(ps) == 1 {
		// The request line above names the policy.
		return strings.TrimPrefix(ps[0].Line(), ps[0].Policy+": ")
	}
	done := 0
	for _, p := range ps {
		if p.Finished() {
			done++
		}
	}
	return fmt.Sprintf("%d/%d policies rotated, %d/%d agents hold the new keys", done, len(ps), loaded, total)
}

package main

import "time"

// phase is one entry of a client's timeline from mjpegserve's /phases: a still or moving
// phase whose first frame was written at Time, as frame Frame of connection Conn.
type phase struct {
	Moving bool      `json:"moving"`
	Time   time.Time `json:"time"`
	Frame  int64     `json:"frame"`
	Conn   int       `json:"conn"`
}

// detection is how one detector's events fell against the script of motion in one run.
type detection struct {
	// Moving counts events that started in a moving phase (or within the latency margin
	// after it); Still counts those that started later in a still phase: false events.
	Moving, Still int
	// Covered counts the moving phases with at least one event; Phases the moving phases the
	// detector saw to their end, plus any later one that already has an event.
	Covered, Phases int
}

// classify places events (positions on the same axis as starts: seconds or frames) against
// a timeline whose phase i begins at starts[i] and is moving if moving[i]. An event up to
// margin into a still phase is put down to the moving phase before it, since a detector
// reports a frame some time after it was sent; events before the first phase are ignored,
// as they come from another run.
func classify(starts []float64, moving []bool, events []float64, margin float64) detection {
	var d detection
	hit := map[int]bool{}
	for _, e := range events {
		i := -1
		for j, s := range starts {
			if s <= e {
				i = j
			}
		}
		switch {
		case i < 0:
			continue
		case moving[i]:
			hit[i] = true
			d.Moving++
		case i > 0 && moving[i-1] && e-starts[i] <= margin:
			hit[i-1] = true
			d.Moving++
		default:
			d.Still++
		}
	}
	for i, m := range moving {
		if m && (i+1 < len(moving) || hit[i]) {
			d.Phases++
			if hit[i] {
				d.Covered++
			}
		}
	}
	return d
}

// byTime classifies event start times against a client's timeline (every connection of it,
// in time order, as a detector that reconnects sees the clip from its start again).
func byTime(tl []phase, events []time.Time, margin time.Duration) detection {
	if len(tl) == 0 {
		return detection{}
	}
	t0 := tl[0].Time
	starts, moving := make([]float64, len(tl)), make([]bool, len(tl))
	for i, p := range tl {
		starts[i], moving[i] = p.Time.Sub(t0).Seconds(), p.Moving
	}
	pos := make([]float64, len(events))
	for i, e := range events {
		pos[i] = e.Sub(t0).Seconds()
	}
	return classify(starts, moving, pos, margin.Seconds())
}

// byFrame classifies events given as frame indices, counted from the first frame of the
// client's first connection, against its timeline; marginFrames is the margin in frames.
// Only the first connection is used: frame indices restart on a new one.
func byFrame(tl []phase, frames []int64, marginFrames int64) detection {
	var starts []float64
	var moving []bool
	for _, p := range tl {
		if p.Conn == 1 {
			starts, moving = append(starts, float64(p.Frame)), append(moving, p.Moving)
		}
	}
	pos := make([]float64, len(frames))
	for i, f := range frames {
		pos[i] = float64(f)
	}
	return classify(starts, moving, pos, float64(marginFrames))
}

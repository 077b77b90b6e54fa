package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/camfleet/camfleet/agent/mjpeg"
	"github.com/camfleet/camfleet/agent/motion"
)

// replay runs every frame of src through det until the input ends or ctx is cancelled
// (SIGINT), then prints a summary with the frame rate and the CPU spent per frame.
func replay(ctx context.Context, src mjpeg.Reader, det *motion.Detector, frames bool, stdout, stderr io.Writer) int {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	start, cpu0 := time.Now(), cpuTime()
	code := 0
	for ctx.Err() == nil {
		data, err := src.Next()
		if mjpeg.Skippable(err) {
			fmt.Fprintf(stderr, "frame=%d error=%q\n", det.Skip().Frame, err.Error())
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				fmt.Fprintf(stderr, "camfleet-motion: reading input: %v\n", err)
				code = 1
			}
			break
		}
		res, err := det.ObserveJPEG(data)
		if err != nil {
			// A bad frame is counted and skipped; the stream goes on.
			fmt.Fprintf(stderr, "frame=%d error=%q\n", res.Frame, err.Error())
			continue
		}
		if frames {
			printFrame(out, res)
		}
		if res.Ended {
			printEvent(out, res.Event)
		}
		if frames || res.Ended {
			_ = out.Flush()
		}
	}
	if ev, ok := det.Flush(); ok {
		printEvent(out, ev)
	}
	_ = out.Flush() // events before the summary, in a terminal that shows both streams
	wall, cpu := time.Since(start), cpuTime()-cpu0
	st := det.Stats()
	fps, perFrame := 0.0, 0.0
	if wall > 0 {
		fps = float64(st.Frames) / wall.Seconds()
	}
	if st.Frames > 0 {
		perFrame = float64(cpu.Microseconds()) / 1000 / float64(st.Frames)
	}
	fmt.Fprintf(stderr, "frames=%d errors=%d events=%d suppressed=%d wall=%.2fs fps=%.1f cpu=%.3fs cpu-per-frame=%.3fms\n",
		st.Frames, st.Errors, st.Events, st.Suppressed, wall.Seconds(), fps, cpu.Seconds(), perFrame)
	return code
}

func printFrame(w io.Writer, r motion.FrameResult) {
	state := "none"
	switch {
	case r.Started:
		state = "start"
	case r.Ended:
		state = "end"
	case r.EventOpen:
		state = "open"
	}
	fmt.Fprintf(w, "frame=%d area=%d changed=%d/%d box=%d,%d,%d,%d motion=%t suppressed=%t reset=%t event=%s\n",
		r.Frame, r.Area, r.Changed, r.Cells, r.Box.X, r.Box.Y, r.Box.W, r.Box.H, r.Motion, r.Suppressed, r.Reset, state)
}

func printEvent(w io.Writer, e motion.Event) {
	fmt.Fprintf(w, "event start=%d end=%d frames=%d peak=%d peak-area=%d box=%d,%d,%d,%d\n",
		e.Start, e.End, e.End-e.Start+1, e.Peak, e.PeakArea, e.Box.X, e.Box.Y, e.Box.W, e.Box.H)
}

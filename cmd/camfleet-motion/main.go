// Command camfleet-motion replays an MJPEG recording or stream through camfleet's motion
// engine and prints the changed area per frame or the motion events, so that a camera owner
// can tune the Camera's motion settings on real footage.
//
//	camfleet-motion [flags] SOURCE
//
// SOURCE is a file of concatenated JPEGs, "-" for standard input, or an http:// URL serving
// multipart/x-mixed-replace, as IP cameras and Debian's motion do.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/camfleet/camfleet/agent/mjpeg"
	"github.com/camfleet/camfleet/agent/motion"
	"github.com/camfleet/camfleet/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	def := motion.DefaultSettings()
	fs := flag.NewFlagSet("camfleet-motion", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		s        motion.Settings
		masks    maskFlag
		mode     = fs.String("print", "events", "what to print: frames (one line per frame) or events")
		maxFrame = fs.Int("max-frame-bytes", motion.MaxFrameBytes, "largest JPEG frame accepted, in bytes")
		showVer  = fs.Bool("version", false, "print the version and exit")
	)
	fs.IntVar(&s.Threshold, "threshold", def.Threshold, "brightness difference (1-255) from the background that marks a cell changed")
	fs.IntVar(&s.MinArea, "min-area", def.MinArea, "changed share of unmasked cells, per-mille, that makes a motion frame")
	fs.IntVar(&s.MinFrames, "min-frames", def.MinFrames, "motion frames in a row that start an event")
	fs.IntVar(&s.EventGap, "event-gap", def.EventGap, "frames without motion that end an event (the Camera's eventGap times the frame rate)")
	fs.IntVar(&s.BackgroundRate, "background-rate", def.BackgroundRate, "per-mille per frame the background moves toward the picture")
	fs.IntVar(&s.LightSwitch, "light-switch", def.LightSwitch, "changed share, per-mille, taken for a light switch (1000: off)")
	fs.Var(&masks, "mask", "region to ignore as x,y,width,height in per-mille of the frame; repeat for several")
	fs.Usage = func() {} // a bad flag gets one line, below, not the whole usage
	usage := func() {
		fmt.Fprintf(stdout, "Usage: camfleet-motion [flags] SOURCE\n\n"+
			"Runs motion detection on an MJPEG file (\"-\" for stdin) or HTTP stream and prints\n"+
			"the changed area and the events. Flags:\n\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return 0
		}
		fmt.Fprintf(stderr, "camfleet-motion: %v (see --help)\n", err)
		return 2
	}
	if *showVer {
		fmt.Fprintf(stdout, "camfleet-motion %s\n", cli.Version)
		return 0
	}
	s.Mask = masks
	if fs.NArg() != 1 || (*mode != "frames" && *mode != "events") {
		fmt.Fprintln(stderr, "camfleet-motion: want one SOURCE and --print frames or events (see --help)")
		return 2
	}
	det, err := motion.NewDetector(s)
	if err != nil {
		fmt.Fprintf(stderr, "camfleet-motion: %v\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, closer, err := mjpeg.Open(ctx, fs.Arg(0), nil, *maxFrame)
	if err != nil {
		fmt.Fprintf(stderr, "camfleet-motion: %v\n", err)
		return 1
	}
	defer closer.Close()
	return replay(ctx, src, det, *mode == "frames", stdout, stderr)
}

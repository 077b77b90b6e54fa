package camera

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/camfleet/camfleet/agent/capture"
	"github.com/camfleet/camfleet/agent/motion"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// settle bounds every wait on a camera's goroutines.
const settle = 10 * time.Second

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func TestMotionSettings(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name string
		spec camv1.MotionSpec
		fps  float64
		want motion.Settings
	}{
		{"defaults at 30 fps", camv1.MotionSpec{}, 30, motion.Settings{Threshold: 20, MinArea: 10, MinFrames: 3, EventGap: 300, BackgroundRate: 20, LightSwitch: 600}},
		{"event gap follows the frame rate", camv1.MotionSpec{EventGap: dur(2 * time.Second)}, 7.5, motion.Settings{Threshold: 20, MinArea: 10, MinFrames: 3, EventGap: 15, BackgroundRate: 20, LightSwitch: 600}},
		{"a gap shorter than a frame is one frame", camv1.MotionSpec{EventGap: dur(10 * time.Millisecond)}, 5, motion.Settings{Threshold: 20, MinArea: 10, MinFrames: 3, EventGap: 1, BackgroundRate: 20, LightSwitch: 600}},
		{"every field and a mask", camv1.MotionSpec{Enabled: &off, Threshold: 9, MinAreaPerMille: 8, ConsecutiveFrames: 4, LightSwitchPerMille: 1000, EventGap: dur(time.Second),
			Masks: []camv1.MaskRegion{{Left: 0, Top: 0, Width: 1000, Height: 100}}}, 15,
			motion.Settings{Threshold: 9, MinArea: 8, MinFrames: 4, EventGap: 15, BackgroundRate: 20, LightSwitch: 1000, Mask: []motion.Rect{{X: 0, Y: 0, W: 1000, H: 100}}}},
	} {
		got := MotionSettings(tc.spec, tc.fps)
		if got.Validate() != nil || got.Threshold != tc.want.Threshold || got.MinArea != tc.want.MinArea || got.MinFrames != tc.want.MinFrames ||
			got.EventGap != tc.want.EventGap || got.LightSwitch != tc.want.LightSwitch || len(got.Mask) != len(tc.want.Mask) || (len(got.Mask) > 0 && got.Mask[0] != tc.want.Mask[0]) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// step moves the fake clock one frame at a time until n frames have been delivered.
func step(t *testing.T, clk *clocktesting.FakeClock, c *Camera, every time.Duration, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		before := c.Stats().Frames
		deadline := time.Now().Add(10 * time.Second)
		for c.Stats().Frames == before {
			if clk.HasWaiters() {
				clk.Step(every)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no frame %d after 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestTestPatternMotionEvents: the scripted crossing of a test pattern becomes one event per
// period, with start and end times, a peak area and a JPEG snapshot; acks are recorded once.
func TestTestPatternMotionEvents(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	spec := camv1.CameraSpec{NodeName: "pi", Source: camv1.CameraSource{Type: camv1.SourceTestPattern, Width: 320, Height: 240, FPS: 10,
		TestPattern: &camv1.TestPatternSource{MotionEvery: dur(4 * time.Second), MotionDuration: dur(2 * time.Second), ObjectPerMille: 150}},
		Motion: camv1.MotionSpec{EventGap: dur(500 * time.Millisecond)}}
	started := make(chan Event, 8)
	c := New(types.NamespacedName{Namespace: "cams", Name: "yard"}, spec, clk, logr.Discard(), Hooks{MotionStarted: func(e Event) { started <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	defer c.Stop()
	step(t, clk, c, 100*time.Millisecond, 20) // still phase
	if n := c.Events.Total(); n != 0 {
		t.Fatalf("%d events while the scene was still", n)
	}
	step(t, clk, c, 100*time.Millisecond, 40) // crossing, then still again
	evs := c.Events.List()
	if len(evs) != 1 || evs[0].End == nil || !evs[0].End.After(evs[0].Start) || evs[0].PeakAreaPerMille == 0 {
		t.Fatalf("events %+v", evs)
	}
	if snap, ok := c.Events.Snapshot(evs[0].ID); !ok || len(snap) < 1000 || snap[0] != 0xFF || snap[1] != 0xD8 {
		t.Errorf("event snapshot: %d bytes, %v", len(snap), ok)
	}
	select {
	case e := <-started:
		if e.ID != evs[0].ID {
			t.Errorf("hook saw event %d", e.ID)
		}
	default:
		t.Error("the MotionStarted hook was not called")
	}
	st := c.Stats()
	if st.Width != 320 || st.Height != 240 || st.Format != capture.FormatMJPEG || !st.Capturing.OK || st.MotionEvents != 1 || st.LastMotion.IsZero() {
		t.Errorf("stats %+v", st)
	}
	if n := c.Events.Ack("bob", 5, clk.Now()); n != 1 {
		t.Errorf("first ack covered %d events", n)
	}
	if n := c.Events.Ack("bob", 5, clk.Now()); n != 0 {
		t.Errorf("second ack covered %d events", n)
	}
	if acks := c.Events.List()[0].Acks; len(acks) != 1 || acks[0].User != "bob" {
		t.Errorf("acks %+v", acks)
	}
	if _, _, ok := c.Snapshot(); !ok {
		t.Error("no snapshot")
	}
}

// countingSource counts its runs and fails when told to.
type countingSource struct {
	runs *atomic.Int32
	fail error
	feed chan capture.Frame
}

func (s countingSource) Run(ctx context.Context, deliver capture.Deliver) error {
	s.runs.Add(1)
	if s.fail != nil {
		return s.fail
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-s.feed:
			deliver(f)
		}
	}
}

// TestSettingsApplyLiveAndSourceRestarts: motion and stream settings change without
// reopening the source; a new source does reopen it; a failing source is retried with backoff
// and reported.
func TestSettingsApplyLiveAndSourceRestarts(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	var runs atomic.Int32
	failing := errors.New("unplugged")
	factory := func(src camv1.CameraSource, _ clock.Clock) (capture.Source, error) {
		if src.V4L2 != nil && src.V4L2.Device == "/dev/gone" {
			return countingSource{runs: &runs, fail: capture.Fail(capture.ReasonDeviceNotFound, "%w", failing)}, nil
		}
		return countingSource{runs: &runs, feed: make(chan capture.Frame)}, nil
	}
	spec := camv1.CameraSpec{Source: camv1.CameraSource{Type: camv1.SourceV4L2, FPS: 10, V4L2: &camv1.V4L2Source{Device: "/dev/video0"}}, Stream: camv1.StreamSpec{MaxClients: 1}}
	c := New(types.NamespacedName{Name: "c"}, spec, clk, logr.Discard(), Hooks{}).WithSourceFactory(factory)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	defer c.Stop()
	testkit.Eventually(t, settle, "the source to be opened", func() (bool, string) {
		n := runs.Load()
		return n == 1, fmt.Sprintf("%d runs, want 1", n)
	})

	live := spec.DeepCopy()
	live.Motion.Threshold, live.Stream.MaxClients, live.Stream.MaxFPS = 40, 2, 5
	c.Apply(ctx, *live)
	if runs.Load() != 1 || c.MaxFPS() != 5 {
		t.Fatalf("a settings change reopened the source (%d runs) or was not applied", runs.Load())
	}
	if _, err := c.Hub.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hub.Subscribe(); err != nil {
		t.Errorf("maxClients 2 not applied: %v", err)
	}

	gone := live.DeepCopy()
	gone.Source.V4L2.Device = "/dev/gone"
	c.Apply(ctx, *gone)
	testkit.Eventually(t, settle, "the failing source to be reported", func() (bool, string) {
		st := c.Stats().Capturing
		return st.Reason == string(capture.ReasonDeviceNotFound), fmt.Sprintf("capturing %+v", st)
	})
	before := runs.Load()
	testkit.Eventually(t, settle, "the camera to wait out its backoff on the clock", func() (bool, string) {
		return clk.HasWaiters(), "nothing waits on the fake clock"
	})
	clk.Step(time.Second)
	testkit.Eventually(t, settle, "the failing source to be retried after the backoff", func() (bool, string) {
		n := runs.Load()
		return n > before, fmt.Sprintf("%d runs, as many as before the backoff", n)
	})
	if st := c.Stats(); st.Capturing.OK {
		t.Errorf("a failing source reported capturing: %+v", st.Capturing)
	}
}

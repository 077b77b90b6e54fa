package capture

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"runtime"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/camfleet/camfleet/agent/motion"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestObjectAt(t *testing.T) {
	p := TestPattern{Width: 640, Height: 480, MotionEvery: 10 * time.Second, MotionDuration: 2 * time.Second, ObjectPerMille: 100}
	// The object (64 px) crosses 640+64 px in the last 2 s of every 10 s.
	cases := []struct {
		name    string
		p       TestPattern
		elapsed time.Duration
		x, side int
		visible bool
	}{
		{"start of the still phase", p, 0, 0, 0, false},
		{"end of the still phase", p, 8*time.Second - 1, 0, 0, false},
		{"entering: just off the left edge", p, 8 * time.Second, -64, 64, false},
		{"entering: first pixels in", p, 8*time.Second + 20*time.Millisecond, -57, 64, true},
		{"half way", p, 9 * time.Second, 288, 64, true},
		{"leaving: last pixels in", p, 10*time.Second - 10*time.Millisecond, 636, 64, true},
		{"next period, still", p, 15 * time.Second, 0, 0, false},
		{"next period, half way", p, 19 * time.Second, 288, 64, true},
		{"a later period, half way", p, 1009 * time.Second, 288, 64, true},
		{"no motion configured", TestPattern{Width: 640, Height: 480}, 9 * time.Second, 0, 0, false},
		{"duration longer than the period", TestPattern{Width: 640, Height: 480, MotionEvery: time.Second, MotionDuration: 5 * time.Second}, 500 * time.Millisecond, 288, 64, true},
		{"default object size", TestPattern{Width: 320, Height: 240, MotionEvery: 2 * time.Second, MotionDuration: 2 * time.Second}, time.Second, 144, 32, true},
		{"object as wide as the frame", TestPattern{Width: 320, Height: 240, MotionEvery: 2 * time.Second, MotionDuration: 2 * time.Second, ObjectPerMille: 1000}, time.Second, 0, 320, true},
		{"before the start", p, -time.Second, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, y, side, visible := c.p.ObjectAt(c.elapsed)
			if x != c.x || side != c.side || visible != c.visible {
				t.Fatalf("ObjectAt(%v) = x %d, side %d, visible %v; want x %d, side %d, visible %v", c.elapsed, x, side, visible, c.x, c.side, c.visible)
			}
			h := c.p.withDefaults().Height
			if side > 0 && y != (h-side)/2 {
				t.Fatalf("y = %d, want the object centred vertically at %d", y, (h-side)/2)
			}
		})
	}
}

// patternRun runs a TestPattern on a fake clock and hands its frames, copied, to the test.
type patternRun struct {
	t      *testing.T
	clk    *testclock.FakeClock
	frames chan Frame
	done   chan error
	cancel context.CancelFunc
}

func startPattern(t *testing.T, p TestPattern) *patternRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &patternRun{t: t, clk: testclock.NewFakeClock(epoch), frames: make(chan Frame), done: make(chan error, 1), cancel: cancel}
	p.Clock = r.clk
	go func() {
		r.done <- p.Run(ctx, func(f Frame) {
			f.Data = bytes.Clone(f.Data)
			select {
			case r.frames <- f:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
	return r
}

func (r *patternRun) next() Frame {
	r.t.Helper()
	select {
	case f := <-r.frames:
		return f
	case err := <-r.done:
		r.t.Fatalf("Run returned %v while a frame was expected", err)
		return Frame{}
	}
}

// step advances the fake clock once Run waits on it, so the step cannot come before the
// timer it should fire.
func (r *patternRun) step(d time.Duration) {
	r.t.Helper()
	for !r.clk.HasWaiters() {
		runtime.Gosched()
	}
	r.clk.Step(d)
}

func decodeFrame(t *testing.T, f Frame) *image.YCbCr {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(f.Data))
	if err != nil {
		t.Fatalf("frame does not decode: %v", err)
	}
	ycc, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("frame decodes to %T, want a YCbCr colour image", img)
	}
	return ycc
}

func TestPatternFramesDecodeAtTheAskedSize(t *testing.T) {
	cases := []struct {
		name             string
		width, height    int
		minSize, maxSize int
	}{
		{"default VGA looks like a camera's", 0, 0, 40 << 10, 150 << 10},
		{"QVGA", 320, 240, 1, 150 << 10},
		{"odd size", 33, 17, 1, 150 << 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := startPattern(t, TestPattern{Width: c.width, Height: c.height})
			f := r.next()
			want := image.Pt(c.width, c.height)
			if c.width == 0 {
				want = image.Pt(DefaultPatternWidth, DefaultPatternHeight)
			}
			if f.Format != FormatMJPEG || f.Width != want.X || f.Height != want.Y || f.Stride != 0 {
				t.Fatalf("frame is %s %dx%d stride %d, want MJPEG %v stride 0", f.Format, f.Width, f.Height, f.Stride, want)
			}
			if got := decodeFrame(t, f).Bounds().Size(); got != want {
				t.Fatalf("frame decodes to %v, want %v", got, want)
			}
			if len(f.Data) < c.minSize || len(f.Data) > c.maxSize {
				t.Fatalf("frame is %d bytes, want %d-%d", len(f.Data), c.minSize, c.maxSize)
			}
		})
	}
}

func TestPatternStillFramesDifferOnlyBySensorNoise(t *testing.T) {
	r := startPattern(t, TestPattern{Width: 320, Height: 240})
	f1 := r.next()
	r.step(100 * time.Millisecond)
	f2 := r.next()
	if bytes.Equal(f1.Data, f2.Data) {
		t.Fatal("two still frames are identical; a camera's noise makes every frame differ")
	}
	a, b := decodeFrame(t, f1), decodeFrame(t, f2)
	sum, changed := 0, 0
	for i := range a.Y {
		d := int(a.Y[i]) - int(b.Y[i])
		sum += max(d, -d)
		if d != 0 {
			changed++
		}
	}
	mean := float64(sum) / float64(len(a.Y))
	if changed < len(a.Y)/4 || mean > 6 {
		t.Fatalf("%d of %d pixels changed, by %.2f on average; want noise: most pixels, a few levels", changed, len(a.Y), mean)
	}
	// Averaged over a detector's 8x8 cell, the noise all but vanishes.
	for y := 0; y+8 <= 240; y += 8 {
		for x := 0; x+8 <= 320; x += 8 {
			d := 0
			for yy := y; yy < y+8; yy++ {
				for xx := x; xx < x+8; xx++ {
					d += int(a.Y[a.YOffset(xx, yy)]) - int(b.Y[b.YOffset(xx, yy)])
				}
			}
			if d/64 > 3 || d/64 < -3 {
				t.Fatalf("cell at (%d,%d) changed by %d levels on average between still frames", x, y, d/64)
			}
		}
	}
}

// TestPatternStillSceneCyclesItsNoisyFrames: an idle test camera shows stillFrames different
// noisy frames in turn, never the same one twice in a row, and the object when it comes.
func TestPatternStillSceneCyclesItsNoisyFrames(t *testing.T) {
	r := startPattern(t, TestPattern{Width: 160, Height: 120, MotionEvery: 10 * time.Second, MotionDuration: time.Second})
	var frames [][]byte
	for i := range 2*stillFrames + 1 {
		if i > 0 {
			r.step(100 * time.Millisecond)
		}
		frames = append(frames, bytes.Clone(r.next().Data))
	}
	for i := 1; i < len(frames); i++ {
		if bytes.Equal(frames[i], frames[i-1]) {
			t.Fatalf("still frames %d and %d are identical", i-1, i)
		}
	}
	for i := stillFrames; i < len(frames); i++ {
		if !bytes.Equal(frames[i], frames[i-stillFrames]) {
			t.Errorf("still frame %d is not frame %d again: the still scene is encoded anew", i, i-stillFrames)
		}
	}
	// 9.5 s in, the object crosses: a frame not among the still ones.
	r.step(9500*time.Millisecond - time.Duration(len(frames)-1)*100*time.Millisecond)
	moving := r.next().Data
	for i, f := range frames[:stillFrames] {
		if bytes.Equal(moving, f) {
			t.Fatalf("the frame with the object is still frame %d", i)
		}
	}
}

func TestPatternIsPacedByTheClock(t *testing.T) {
	r := startPattern(t, TestPattern{Width: 64, Height: 48, FPS: 10})
	period := 100 * time.Millisecond
	if f := r.next(); !f.Captured.Equal(epoch) {
		t.Fatalf("first frame captured at %v, want the start %v", f.Captured, epoch)
	}
	for n := 1; n <= 3; n++ {
		r.step(period)
		if f := r.next(); !f.Captured.Equal(epoch.Add(time.Duration(n) * period)) {
			t.Fatalf("frame %d captured at %v, want %v", n, f.Captured, epoch.Add(time.Duration(n)*period))
		}
	}
	// A receiver that fell behind gets the scene as it is now, not a backlog.
	r.step(5*period + period/2)
	if f := r.next(); !f.Captured.Equal(epoch.Add(8 * period)) {
		t.Fatalf("frame after a late step captured at %v, want %v", f.Captured, epoch.Add(8*period))
	}
}

func TestPatternRunReturnsNilWhenCancelled(t *testing.T) {
	r := startPattern(t, TestPattern{Width: 64, Height: 48})
	r.next()
	for !r.clk.HasWaiters() {
		runtime.Gosched()
	}
	r.cancel() // while Run waits for the next frame's time
	if err := <-r.done; err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	r.done <- nil // for the cleanup
}

func TestPatternRejectsWhatItCannotRender(t *testing.T) {
	cases := []struct {
		name string
		p    TestPattern
	}{
		{"negative width", TestPattern{Width: -1}},
		{"huge height", TestPattern{Height: 100000}},
		{"negative rate", TestPattern{FPS: -5}},
		{"quality over 100", TestPattern{Quality: 101}},
		{"object wider than the frame", TestPattern{ObjectPerMille: 1001}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Run(context.Background(), func(Frame) { t.Fatal("delivered a frame") })
			if ReasonOf(err) != ReasonFormatUnsupported {
				t.Fatalf("Run returned %v, want FormatUnsupported", err)
			}
		})
	}
}

// TestPatternMotionIsSeenOnlyWhileTheObjectMoves runs the agent's motion detector over one
// period of the scripted motion: two still seconds, then two seconds of the object crossing.
func TestPatternMotionIsSeenOnlyWhileTheObjectMoves(t *testing.T) {
	const fps = 10
	p := TestPattern{Width: 320, Height: 240, FPS: fps, MotionEvery: 4 * time.Second, MotionDuration: 2 * time.Second, ObjectPerMille: 150}
	d, err := motion.NewDetector(motion.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	r := startPattern(t, p)
	var motionFrames, started []int
	for n := range 4 * fps {
		if n > 0 {
			r.step(time.Second / fps)
		}
		f := r.next()
		res, err := d.ObserveJPEG(f.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		_, _, _, visible := p.ObjectAt(f.Captured.Sub(epoch))
		if res.Motion {
			motionFrames = append(motionFrames, n)
			if !visible {
				t.Errorf("frame %d: motion (area %d‰) while the scene is still", n, res.Area)
			}
		}
		if res.Started {
			started = append(started, n)
		}
	}
	// Frames 21-39 show the object; the first and last of them show only a sliver.
	if len(motionFrames) < 15 {
		t.Errorf("motion in frames %v, want most of 21-39", motionFrames)
	}
	if len(started) != 1 {
		t.Errorf("events started at frames %v, want one", started)
	}
}

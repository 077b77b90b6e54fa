// Package camera runs one camera on a node: its source with retries, motion detection on
// every frame, the bounded ring of motion events, and the MJPEG hub that streams its frames.
// Settings change live; only a change of source restarts capture.
package camera

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"reflect"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/agent/capture"
	"github.com/camfleet/camfleet/agent/motion"
	"github.com/camfleet/camfleet/agent/stream"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Backoff bounds between attempts to reopen a failed source.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// timeRing remembers the capture times of the last frames, to date events by frame index.
const timeRing = 1024

// Hooks let the node agent learn of what happens on a camera.
type Hooks struct {
	// MotionStarted is called when an event opens, on the camera's goroutine.
	MotionStarted func(Event)
	// Frame is called for every frame, for metrics.
	Frame func(format capture.Format, motion bool)
	// Changed is called when a condition changes, so status can be written promptly.
	Changed func()
}

// Condition is the state of one of the camera's agent-owned conditions.
type Condition struct {
	OK      bool
	Reason  string
	Message string
}

// Stats is what the camera's status reports.
type Stats struct {
	Width, Height   int
	Format          capture.Format
	FPS             float64
	Frames, Dropped int64
	LastFrame       time.Time
	LastMotion      time.Time
	MotionEvents    int64
	Capturing       Condition
	Motion          Condition
}

// Camera is one running camera.
type Camera struct {
	Key    types.NamespacedName
	Events *Events
	Hub    *stream.Hub

	clock clock.Clock
	log   logr.Logger
	hooks Hooks
	// newSource builds the source of a spec; tests replace it.
	newSource func(camv1.CameraSource, clock.Clock) (capture.Source, error)

	mu       sync.Mutex
	spec     camv1.CameraSpec
	stats    Stats
	stopSrc  context.CancelFunc
	srcDone  chan struct{}
	settings motion.Settings
	enabled  bool
	basisFPS float64
	maxFPS   int

	// buffers recycles the JPEG copies the hub shares with stream clients.
	buffers bufferPool

	// Frame-goroutine state, touched only while delivering.
	det      *motion.Detector
	detFor   motion.Settings
	times    [timeRing]time.Time
	open     *Event
	raw      []byte
	rawFrame capture.Frame
	winStart time.Time
	winCount int
}

// New returns a camera for spec; Start begins capture.
func New(key types.NamespacedName, spec camv1.CameraSpec, c clock.Clock, log logr.Logger, hooks Hooks) *Camera {
	cam := &Camera{Key: key, Events: newEvents(key.String()), Hub: stream.NewHub(int(spec.Stream.MaxClients)),
		clock: c, log: log, hooks: hooks, newSource: SourceFor}
	cam.Hub.Clock = c
	cam.applySettings(spec)
	cam.stats.Capturing = Condition{Reason: "Starting", Message: "opening the source"}
	return cam
}

// WithSourceFactory replaces how sources are built, for tests.
func (c *Camera) WithSourceFactory(f func(camv1.CameraSource, clock.Clock) (capture.Source, error)) *Camera {
	c.newSource = f
	return c
}

// Start begins capture on the spec's source.
func (c *Camera) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startSource(ctx, c.spec.Source)
}

// Apply takes a new spec: motion and stream settings apply to the next frame; a changed
// source restarts capture; nothing else is interrupted.
func (c *Camera) Apply(ctx context.Context, spec camv1.CameraSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	restart := !reflect.DeepEqual(c.spec.Source, spec.Source)
	c.applySettings(spec)
	c.Hub.SetMaxClients(int(spec.Stream.MaxClients))
	if restart {
		c.log.Info("Source changed; restarting capture", "camera", c.Key.String())
		c.stopSource()
		c.startSource(ctx, spec.Source)
	}
}

// Stop ends capture and waits for the source to close.
func (c *Camera) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopSource()
}

// Spec is the spec the camera runs.
func (c *Camera) Spec() camv1.CameraSpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.spec.DeepCopy()
}

// MaxFPS is the per-client stream rate cap.
func (c *Camera) MaxFPS() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxFPS
}

// Stats returns what the camera's status reports.
func (c *Camera) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.MotionEvents = c.Events.Total()
	return s
}

// Snapshot is a copy of the latest frame as JPEG.
func (c *Camera) Snapshot() ([]byte, time.Time, bool) {
	if f, ok := c.Hub.Acquire(); ok {
		defer f.Release()
		return bytes.Clone(f.JPEG()), f.Captured(), true
	}
	c.mu.Lock()
	raw, f := c.raw, c.rawFrame
	c.mu.Unlock()
	if raw == nil {
		return nil, time.Time{}, false
	}
	f.Data = raw
	b, err := encodeYUYV(f)
	if err != nil {
		return nil, time.Time{}, false
	}
	return b, f.Captured, true
}

func (c *Camera) applySettings(spec camv1.CameraSpec) {
	c.spec = *spec.DeepCopy()
	c.enabled = MotionEnabled(spec.Motion)
	if c.basisFPS == 0 {
		c.basisFPS = float64(max(spec.Source.FPS, 1))
	}
	c.settings = MotionSettings(spec.Motion, c.basisFPS)
	c.maxFPS = int(spec.Stream.MaxFPS)
	if !c.enabled {
		c.stats.Motion = Condition{Reason: "Disabled", Message: "motion detection is off"}
	} else if c.stats.Motion.Reason == "Disabled" || c.stats.Motion.Reason == "" {
		c.stats.Motion = Condition{OK: true, Reason: "Detecting", Message: "detecting motion on every frame"}
	}
}

func (c *Camera) startSource(parent context.Context, src camv1.CameraSource) {
	ctx, cancel := context.WithCancel(parent)
	c.stopSrc, c.srcDone = cancel, make(chan struct{})
	go c.run(ctx, src, c.srcDone)
}

func (c *Camera) stopSource() {
	if c.stopSrc == nil {
		return
	}
	c.stopSrc()
	done := c.srcDone
	c.mu.Unlock()
	<-done
	c.mu.Lock()
	c.stopSrc, c.srcDone = nil, nil
}

// run opens the source and retries it with exponential backoff until ctx ends.
func (c *Camera) run(ctx context.Context, spec camv1.CameraSource, done chan struct{}) {
	defer close(done)
	backoff := minBackoff
	for {
		src, err := c.newSource(spec, c.clock)
		var frames int64
		if err == nil {
			before := c.Stats().Frames
			err = src.Run(ctx, c.deliver)
			frames = c.Stats().Frames - before
		} else {
			err = capture.Fail(capture.ReasonUnsupported, "%v", err)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = capture.Fail(capture.ReasonDisconnected, "the source ended")
		}
		if frames > 0 {
			backoff = minBackoff
		}
		c.log.Info("Source failed; retrying", "camera", c.Key.String(), "reason", string(capture.ReasonOf(err)), "error", err.Error(), "retryIn", backoff.String())
		c.setCapturing(Condition{Reason: string(capture.ReasonOf(err)), Message: errMessage(err) + "; retrying in " + backoff.String()})
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func errMessage(err error) string {
	var ce *capture.Error
	if errors.As(err, &ce) {
		return ce.Err.Error()
	}
	return err.Error()
}

func (c *Camera) setCapturing(cond Condition) {
	c.mu.Lock()
	changed := c.stats.Capturing != cond
	c.stats.Capturing = cond
	c.mu.Unlock()
	if changed && c.hooks.Changed != nil {
		c.hooks.Changed()
	}
}

// deliver handles one frame on the source's goroutine: statistics, motion, events, stream.
func (c *Camera) deliver(f capture.Frame) {
	now := f.Captured
	if now.IsZero() {
		now = c.clock.Now()
	}
	c.mu.Lock()
	wasCapturing := c.stats.Capturing.OK
	c.stats.Capturing = Condition{OK: true, Reason: "Capturing", Message: "receiving frames"}
	c.stats.Frames++
	c.stats.LastFrame, c.stats.Width, c.stats.Height, c.stats.Format = now, f.Width, f.Height, f.Format
	c.measure(now)
	settings, enabled := c.settings, c.enabled
	c.mu.Unlock()
	if !wasCapturing && c.hooks.Changed != nil {
		c.hooks.Changed()
	}

	var jpegData []byte
	if f.Format == capture.FormatMJPEG {
		jpegData = append(c.buffers.get(len(f.Data)), f.Data...)
	} else if c.Hub.Clients() > 0 || c.open != nil {
		jpegData, _ = encodeYUYV(f)
	}
	if jpegData == nil && f.Format == capture.FormatYUYV {
		c.mu.Lock()
		c.raw = append(c.raw[:0], f.Data...)
		c.rawFrame = f
		c.rawFrame.Data = nil
		c.mu.Unlock()
	}

	moving := false
	if enabled {
		moving = c.detect(f, now, settings, jpegData)
	}
	if jpegData != nil {
		c.Hub.PublishRecycled(jpegData, now, c.buffers.put)
	}
	if c.hooks.Frame != nil {
		c.hooks.Frame(f.Format, moving)
	}
}

// measure keeps the frame rate over windows of about two seconds. Called with mu held.
func (c *Camera) measure(now time.Time) {
	if c.winStart.IsZero() {
		c.winStart = now
	}
	c.winCount++
	if d := now.Sub(c.winStart); d >= 2*time.Second {
		c.stats.FPS = float64(c.winCount-1) / d.Seconds()
		c.winStart, c.winCount = now, 1
		// The detector counts frames: follow the measured rate when it moves by over 10%.
		if c.stats.FPS > 0 && (c.stats.FPS > c.basisFPS*1.1 || c.stats.FPS < c.basisFPS*0.9) {
			c.basisFPS = c.stats.FPS
			c.settings = MotionSettings(c.spec.Motion, c.basisFPS)
		}
	}
}

// detect runs the frame through the detector and keeps the event ring up to date.
func (c *Camera) detect(f capture.Frame, now time.Time, s motion.Settings, jpegData []byte) bool {
	if c.det == nil || !reflect.DeepEqual(c.detFor, s) {
		d, err := motion.NewDetector(s)
		if err != nil {
			c.setMotion(Condition{Reason: "InvalidSettings", Message: err.Error()})
			return false
		}
		c.det, c.detFor = d, s
	}
	var res motion.FrameResult
	var err error
	switch f.Format {
	case capture.FormatMJPEG:
		res, err = c.det.ObserveJPEG(f.Data)
	case capture.FormatYUYV:
		stride := f.Stride
		if stride == 0 {
			stride = f.Width * 2
		}
		res, err = c.det.ObserveYUYV(f.Data, f.Width, f.Height, stride)
	}
	if err != nil {
		c.mu.Lock()
		c.stats.Dropped++
		c.mu.Unlock()
		return false
	}
	c.setMotion(Condition{OK: true, Reason: "Detecting", Message: "detecting motion on every frame"})
	c.times[res.Frame%timeRing] = now
	switch {
	case res.Started:
		start := now
		if res.Frame-res.Event.Start < timeRing {
			start = c.times[res.Event.Start%timeRing]
		}
		c.open = c.Events.start(start, res.Event.PeakArea, res.Event.Box, bytes.Clone(jpegData))
		c.mu.Lock()
		c.stats.LastMotion = start
		c.mu.Unlock()
		if c.hooks.MotionStarted != nil {
			c.hooks.MotionStarted(c.open.public())
		}
	case res.EventOpen && c.open != nil && res.Event.Peak == res.Frame && jpegData != nil:
		c.Events.peak(c.open, res.Event.PeakArea, res.Event.Box, bytes.Clone(jpegData))
	case res.Ended && c.open != nil:
		end := now
		if res.Frame-res.Event.End < timeRing {
			end = c.times[res.Event.End%timeRing]
		}
		c.Events.end(c.open, end, res.Event.Box)
		c.open = nil
	}
	return res.Motion
}

func (c *Camera) setMotion(cond Condition) {
	c.mu.Lock()
	changed := c.stats.Motion != cond
	if c.enabled {
		c.stats.Motion = cond
	} else {
		changed = false
	}
	c.mu.Unlock()
	if changed && c.hooks.Changed != nil {
		c.hooks.Changed()
	}
}

// encodeYUYV encodes a raw YUYV frame once, for streaming and snapshots.
func encodeYUYV(f capture.Frame) ([]byte, error) {
	stride := f.Stride
	if stride == 0 {
		stride = f.Width * 2
	}
	if f.Width < 2 || f.Height < 1 || stride < f.Width*2 || len(f.Data) < stride*(f.Height-1)+f.Width*2 {
		return nil, errors.New("YUYV frame shorter than its size")
	}
	img := image.NewYCbCr(image.Rect(0, 0, f.Width, f.Height), image.YCbCrSubsampleRatio422)
	for y := 0; y < f.Height; y++ {
		row := f.Data[y*stride:]
		for x := 0; x+1 < f.Width; x += 2 {
			i := x * 2
			img.Y[y*img.YStride+x] = row[i]
			img.Y[y*img.YStride+x+1] = row[i+2]
			img.Cb[y*img.CStride+x/2] = row[i+1]
			img.Cr[y*img.CStride+x/2] = row[i+3]
		}
	}
	var buf bytes.Buffer
	buf.Grow(f.Width * f.Height / 4)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bufferPool keeps a few frame buffers for reuse: a camera at 30 frames a second would
// otherwise allocate (and fault in) 2-3 MB a second. Buffers beyond the pool's size, or too
// small for the frame at hand, are left to the garbage collector.
type bufferPool struct {
	mu   sync.Mutex
	free [][]byte
}

const pooledBuffers = 8

func (p *bufferPool) get(n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= n {
			p.free = append(p.free[:i], p.free[i+1:]...)
			return b[:0]
		}
	}
	return make([]byte, 0, n+n/4)
}

func (p *bufferPool) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < pooledBuffers {
		p.free = append(p.free, b[:0])
	}
}

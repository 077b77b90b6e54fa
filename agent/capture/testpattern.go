package capture

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"time"

	"k8s.io/utils/clock"
)

// Defaults of a TestPattern's zero fields.
const (
	DefaultPatternWidth          = 640
	DefaultPatternHeight         = 480
	DefaultPatternFPS            = 10
	DefaultPatternQuality        = 80
	DefaultPatternObjectPerMille = 100
)

// maxPatternSide bounds a test pattern's width and height, as a camera's sensor is bounded.
const maxPatternSide = 8192

// Object of the scripted motion: dark and reddish, so that its luma differs from every part
// of the background (which is kept within bgMinY..bgMaxY) by far more than a detector's
// threshold.
const (
	objectY, objectCb, objectCr = 28, 112, 168
	bgMinY, bgMaxY              = 80, 235
)

// TestPattern generates MJPEG frames of a scene that looks like a real camera's: a textured
// still background, sensor noise that differs from each frame to the next, and, if MotionEvery is set, a
// square object crossing the frame on a fixed schedule, so that motion detection and
// streaming are exercised end to end without hardware.
type TestPattern struct {
	// Width and Height of the frames in pixels; 640x480 if zero.
	Width, Height int
	// FPS is the frame rate; 10 if zero.
	FPS int
	// MotionEvery is the period of the scripted motion: the last MotionDuration of every
	// period shows the object crossing the frame from left to right. Zero keeps the scene
	// still.
	MotionEvery, MotionDuration time.Duration
	// ObjectPerMille is the object's side in per-mille of the width; 100 if zero.
	ObjectPerMille int
	// Clock paces the frames; the real clock if nil.
	Clock clock.Clock
	// Quality is the JPEG quality, 1-100; 80 if zero.
	Quality int
}

func (p TestPattern) withDefaults() TestPattern {
	if p.Width == 0 {
		p.Width = DefaultPatternWidth
	}
	if p.Height == 0 {
		p.Height = DefaultPatternHeight
	}
	if p.FPS == 0 {
		p.FPS = DefaultPatternFPS
	}
	if p.ObjectPerMille == 0 {
		p.ObjectPerMille = DefaultPatternObjectPerMille
	}
	if p.Quality == 0 {
		p.Quality = DefaultPatternQuality
	}
	if p.Clock == nil {
		p.Clock = clock.RealClock{}
	}
	return p
}

// ObjectAt is where the scripted object is at elapsed time since the start: the top-left
// corner (x may be negative while the object enters the frame) and side of the square, and
// whether any of it is in the frame. It is a pure function of elapsed modulo MotionEvery.
func (p TestPattern) ObjectAt(elapsed time.Duration) (x, y, side int, visible bool) {
	p = p.withDefaults()
	if p.MotionEvery <= 0 || p.MotionDuration <= 0 || elapsed < 0 {
		return 0, 0, 0, false
	}
	duration := min(p.MotionDuration, p.MotionEvery)
	into := elapsed%p.MotionEvery - (p.MotionEvery - duration)
	if into < 0 {
		return 0, 0, 0, false
	}
	side = max(1, p.Width*min(p.ObjectPerMille, 1000)/1000)
	// The object travels from just off the left edge to just off the right edge.
	travel := int64(p.Width + side)
	x = -side + int(travel*int64(into)/int64(duration))
	y = (p.Height - side) / 2
	return x, y, side, x+side > 0 && x < p.Width
}

// Run delivers frames at FPS until ctx ends; it fails only on a configuration it cannot
// render. A slow deliver makes it skip the frames it missed, as a camera does.
func (p TestPattern) Run(ctx context.Context, deliver Deliver) error {
	p = p.withDefaults()
	switch {
	case p.Width < 1 || p.Height < 1 || p.Width > maxPatternSide || p.Height > maxPatternSide:
		return Fail(ReasonFormatUnsupported, "test pattern size %dx%d is outside 1x1-%dx%d", p.Width, p.Height, maxPatternSide, maxPatternSide)
	case p.FPS < 1 || p.FPS > 1000:
		return Fail(ReasonFormatUnsupported, "test pattern rate %d fps is outside 1-1000", p.FPS)
	case p.Quality < 1 || p.Quality > 100:
		return Fail(ReasonFormatUnsupported, "test pattern JPEG quality %d is outside 1-100", p.Quality)
	case p.ObjectPerMille < 0 || p.ObjectPerMille > 1000:
		return Fail(ReasonFormatUnsupported, "test pattern object size %d per mille is outside 1-1000", p.ObjectPerMille)
	}
	r := newPatternRenderer(p)
	period := time.Second / time.Duration(p.FPS)
	start := p.Clock.Now()
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n := int64(0); ; n++ {
		// Frames are due at start + n*period. Frames whose time has passed are skipped, so
		// a slow receiver sees the scene where it is now rather than a backlog.
		if wait := time.Duration(n)*period - p.Clock.Since(start); wait > 0 {
			if timer == nil {
				timer = p.Clock.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C():
			}
		} else if ctx.Err() != nil {
			return nil
		}
		n = max(n, int64(p.Clock.Since(start)/period))
		at := time.Duration(n) * period
		data, err := r.render(p.ObjectAt(at))
		if err != nil {
			return Fail(ReasonBadStream, "encode test pattern frame: %w", err)
		}
		deliver(Frame{Data: data, Format: FormatMJPEG, Width: p.Width, Height: p.Height, Captured: start.Add(at)})
	}
}

// stillFrames is how many encoded frames of the still scene a test pattern keeps and cycles
// through: consecutive frames still differ by their noise, as a sensor's do, but an idle test
// camera costs no JPEG encoding, which is most of a frame's cost. A fleet simulation runs
// thousands of them on one machine; a demo runs one on a Pi.
const stillFrames = 4

// patternRenderer holds the precomputed background and the buffers reused for every frame,
// so that a frame costs only its noise, the object and the JPEG encoding.
type patternRenderer struct {
	bg    *image.YCbCr // the still scene
	frame *image.YCbCr
	out   bytes.Buffer
	opts  jpeg.Options
	rng   uint64 // xorshift state of the sensor noise
	// still are encoded frames of the still scene, each with its own noise, and nextStill the
	// one to show next once all are made.
	still     [][]byte
	nextStill int
}

func newPatternRenderer(p TestPattern) *patternRenderer {
	rect := image.Rect(0, 0, p.Width, p.Height)
	return &patternRenderer{
		bg:    background(p.Width, p.Height),
		frame: image.NewYCbCr(rect, image.YCbCrSubsampleRatio420),
		opts:  jpeg.Options{Quality: p.Quality},
		rng:   0x9E3779B97F4A7C15,
	}
}

// sensorNoise maps a random byte to a luma jitter: the sum of two uniform nibbles, scaled,
// is a triangular distribution of standard deviation about 3.3 levels, close enough to a
// sensor's read noise.
var sensorNoise = func() (t [256]int16) {
	for b := range t {
		t[b] = int16(math.Round(float64(b&15+b>>4-15) * 0.5))
	}
	return t
}()

// render draws one frame, with the object if visible, and returns its JPEG bytes, valid
// until the next call.
func (r *patternRenderer) render(ox, oy, side int, visible bool) ([]byte, error) {
	if !visible && len(r.still) == stillFrames {
		b := r.still[r.nextStill]
		r.nextStill = (r.nextStill + 1) % stillFrames
		return b, nil
	}
	f, bg := r.frame, r.bg
	copy(f.Cb, bg.Cb)
	copy(f.Cr, bg.Cr)
	s := r.rng
	for i := 0; i < len(bg.Y); {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		for k, v := 0, s; k < 8 && i < len(bg.Y); k, v, i = k+1, v>>8, i+1 {
			f.Y[i] = clamp8(int16(bg.Y[i]) + sensorNoise[v&0xFF])
		}
	}
	r.rng = s
	if visible {
		r.drawObject(ox, oy, side)
	}
	r.out.Reset()
	if err := jpeg.Encode(&r.out, f, &r.opts); err != nil {
		return nil, err
	}
	if !visible {
		r.still = append(r.still, bytes.Clone(r.out.Bytes()))
	}
	return r.out.Bytes(), nil
}

// drawObject paints the square over the noisy frame: a flat dark body with a lighter
// border, keeping the noise so it looks lit by the same scene.
func (r *patternRenderer) drawObject(ox, oy, side int) {
	f := r.frame
	b := f.Rect
	area := image.Rect(ox, oy, ox+side, oy+side).Intersect(b)
	border := max(1, side/10)
	for y := area.Min.Y; y < area.Max.Y; y++ {
		for x := area.Min.X; x < area.Max.X; x++ {
			i := f.YOffset(x, y)
			luma := int16(objectY)
			if x-ox < border || ox+side-1-x < border || y-oy < border || oy+side-1-y < border {
				luma += 24
			}
			noise := int16(f.Y[i]) - int16(r.bg.Y[i])
			f.Y[i] = clamp8(luma + noise)
			c := f.COffset(x, y)
			f.Cb[c], f.Cr[c] = objectCb, objectCr
		}
	}
}

// background renders the still scene: a lit gradient, value noise at three scales, paving
// tiles of varying gray in the lower third and a fine static grain, all from a fixed seed so
// that every run shows the same place.
func background(w, h int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	// A few hard-edged shapes (walls, windows, poles), placed in proportion to the size.
	type block struct {
		r     image.Rectangle
		shade float64
	}
	var blocks []block
	for i := range 14 {
		bx, by := int(hash01(i, 0, 9)*float64(w)), int(hash01(i, 1, 9)*float64(h)*2/3)
		bw, bh := 4+int(hash01(i, 2, 9)*float64(w)/6), 4+int(hash01(i, 3, 9)*float64(h)/4)
		blocks = append(blocks, block{image.Rect(bx, by, bx+bw, by+bh), 70 * (hash01(i, 4, 9) - 0.5)})
	}
	for y := range h {
		for x := range w {
			fx, fy := float64(x), float64(y)
			v := 150 + 40*fy/float64(h) - 25*fx/float64(w)
			v += 30*valueNoise(fx/96, fy/96, 1) + 14*valueNoise(fx/20, fy/20, 2) + 7*valueNoise(fx/5, fy/5, 3)
			if y > h*2/3 {
				v += 18 * (hash01(x/32, y/24, 4) - 0.5)
				if x%32 == 0 || y%24 == 0 {
					v -= 30 // the joints between tiles
				}
			}
			for _, b := range blocks {
				if image.Pt(x, y).In(b.r) {
					v += b.shade + 8*valueNoise(fx/3, fy/3, 8)
				}
			}
			v += 26 * (hash01(x, y, 5) - 0.5)
			img.Y[img.YOffset(x, y)] = uint8(min(max(v, bgMinY), bgMaxY))
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	for y := range ch {
		for x := range cw {
			fx, fy := float64(x), float64(y)
			i := y*img.CStride + x
			img.Cb[i] = uint8(124 + 10*fx/float64(cw) + 6*valueNoise(fx/40, fy/40, 6))
			img.Cr[i] = uint8(132 - 8*fy/float64(ch) + 6*valueNoise(fx/40, fy/40, 7))
		}
	}
	return img
}

// valueNoise is smooth noise in [-1, 1]: random values on the integer lattice, blended with
// a smoothstep between them.
func valueNoise(x, y float64, seed uint64) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	ix, iy := int(x0), int(y0)
	tx, ty := smooth(x-x0), smooth(y-y0)
	top := lerp(hash01(ix, iy, seed), hash01(ix+1, iy, seed), tx)
	bottom := lerp(hash01(ix, iy+1, seed), hash01(ix+1, iy+1, seed), tx)
	return 2*lerp(top, bottom, ty) - 1
}

func smooth(t float64) float64     { return t * t * (3 - 2*t) }
func lerp(a, b, t float64) float64 { return a + (b-a)*t }

// hash01 is a deterministic pseudo-random value in [0, 1) for a lattice point.
func hash01(x, y int, seed uint64) float64 {
	h := uint64(x)*0x9E3779B97F4A7C15 ^ uint64(y)*0xC2B2AE3D27D4EB4F ^ seed*0x165667B19E3779F9
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return float64(h>>11) / (1 << 53)
}

func clamp8(v int16) uint8 { return uint8(min(max(v, 0), 255)) }

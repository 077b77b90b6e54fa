package motion

import (
	"fmt"
)

// Detector finds motion events in a stream of frames of one camera. Each frame is reduced to
// a luma grid and compared cell by cell with a background that adapts slowly; frames with
// enough changed area are motion frames, and runs of them make events.
//
// A Detector keeps its buffers between frames: after the first frames of a size it allocates
// nothing, and its memory is bounded by MaxFrameBytes and MaxDimension. It is not safe for
// concurrent use: the agent runs one per camera, from that camera's goroutine.
type Detector struct {
	s Settings
	// alpha is the background rate in Q15; thr the threshold in the background's Q8 units.
	alpha, thr int32
	// hold is how many frames in a row a cell may be changed before its background starts
	// to follow it again.
	hold uint16

	w, h     int
	bg       []uint16 // background brightness in Q8 fixed point, so slow rates still move it
	held     []uint16 // frames in a row each cell has been changed
	mask     []uint8  // 1 where a mask region covers the cell
	unmasked int
	ready    bool

	frame int64
	run   int   // consecutive motion frames while no event is open
	cand  Event // the run so far, which becomes the event when it is long enough
	open  bool
	gap   int // frames without motion since the open event's last motion frame
	ev    Event
	stats Stats

	jpeg JPEGReader
	grid Grid
}

// FrameResult is what one frame showed.
type FrameResult struct {
	// Frame is the frame's index, counting every frame given to the detector from 0,
	// rejected ones included, so it matches the position in the input.
	Frame int64
	// Changed is the number of unmasked cells that changed; Cells the number of unmasked
	// cells.
	Changed, Cells int
	// Area is the changed share of the unmasked cells, in per-mille, rounded down.
	Area int
	// Box bounds the changed cells, in per-mille of the frame; zero when nothing changed.
	Box Rect
	// Motion reports that the frame counts as motion: Area >= MinArea and not suppressed.
	Motion bool
	// Suppressed reports a whole-frame change (Area above LightSwitch): the background was
	// reset to this frame and no motion counted.
	Suppressed bool
	// Reset reports that the background was (re)started from this frame: the first frame,
	// or the first after a change of frame size.
	Reset bool
	// EventOpen reports an event in progress after this frame; Event is then that event so
	// far.
	EventOpen bool
	// Started reports that this frame opened an event (its Start is the first frame of the
	// run that opened it).
	Started bool
	// Ended reports that this frame closed an event; Event is then that event.
	Ended bool
	Event Event
}

// Event is a stretch of motion: from the first to the last motion frame, with no more than
// EventGap-1 frames without motion inside.
type Event struct {
	// Start and End are the indices of its first and last motion frames.
	Start, End int64
	// Peak is the index of the frame with the largest area, PeakArea that area in per-mille.
	Peak     int64
	PeakArea int
	// Box bounds every changed cell of the event's motion frames, in per-mille.
	Box Rect
}

// Stats counts what a detector has seen.
type Stats struct {
	// Frames counts every frame given to the detector, Errors those rejected.
	Frames, Errors int64
	// Events counts events opened; Suppressed the frames taken for a light switch; Resets
	// the background restarts (first frame and frame size changes).
	Events, Suppressed, Resets int64
}

// NewDetector returns a detector with validated settings.
func NewDetector(s Settings) (*Detector, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.Mask = append([]Rect(nil), s.Mask...)
	return &Detector{
		s:     s,
		alpha: int32(s.BackgroundRate * 32768 / 1000),
		hold:  uint16(min(4000/s.BackgroundRate, 65535)),
		thr:   int32(s.Threshold)*256 - 128, // |cell - background| >= Threshold, background rounded
	}, nil
}

// Settings returns the detector's settings.
func (d *Detector) Settings() Settings {
	s := d.s
	s.Mask = append([]Rect(nil), d.s.Mask...)
	return s
}

// Stats returns the counts so far.
func (d *Detector) Stats() Stats { return d.stats }

// ObserveJPEG runs one JPEG (MJPEG) frame through the detector, reading only its luma DC
// coefficients. A frame that cannot be read returns an error wrapping one of the package's
// Err values; it is counted and leaves the detector as it was, so the stream goes on.
func (d *Detector) ObserveJPEG(data []byte) (FrameResult, error) {
	if err := d.jpeg.DecodeDC(data, &d.grid); err != nil {
		return d.reject(fmt.Errorf("frame %d: %w", d.frame, err))
	}
	return d.observe(&d.grid), nil
}

// ObserveYUYV runs one YUYV 4:2:2 frame through the detector; see ReduceYUYV.
func (d *Detector) ObserveYUYV(frame []byte, width, height, stride int) (FrameResult, error) {
	if err := ReduceYUYV(&d.grid, frame, width, height, stride); err != nil {
		return d.reject(fmt.Errorf("frame %d: %w", d.frame, err))
	}
	return d.observe(&d.grid), nil
}

// ObserveGray runs one 8-bit grayscale frame through the detector; see ReduceGray.
func (d *Detector) ObserveGray(frame []byte, width, height, stride int) (FrameResult, error) {
	if err := ReduceGray(&d.grid, frame, width, height, stride); err != nil {
		return d.reject(fmt.Errorf("frame %d: %w", d.frame, err))
	}
	return d.observe(&d.grid), nil
}

// Skip counts a frame that never reached the detector, such as a broken part of an MJPEG
// stream, as a rejected frame, so that frame indices keep matching the input.
func (d *Detector) Skip() FrameResult {
	res, _ := d.reject(nil)
	return res
}

func (d *Detector) reject(err error) (FrameResult, error) {
	res := FrameResult{Frame: d.frame, EventOpen: d.open}
	if d.open {
		res.Event = d.ev
	}
	d.frame++
	d.stats.Frames++
	d.stats.Errors++
	return res, err
}

// Observe runs one frame, already reduced to a grid (by another source of luma), through
// the detector. A grid whose size and cells disagree, or larger than MaxDimension allows, is
// rejected like a bad frame.
func (d *Detector) Observe(g *Grid) (FrameResult, error) {
	gw, gh := GridSize(MaxDimension, MaxDimension)
	if g.W <= 0 || g.H <= 0 || g.W > gw || g.H > gh || len(g.Pix) < g.W*g.H {
		return d.reject(fmt.Errorf("frame %d: %w: grid %dx%d with %d cells", d.frame, ErrFrameSize, g.W, g.H, len(g.Pix)))
	}
	return d.observe(g), nil
}

func (d *Detector) observe(g *Grid) FrameResult {
	res := FrameResult{Frame: d.frame}
	d.frame++
	d.stats.Frames++
	if !d.ready || g.W != d.w || g.H != d.h {
		d.restart(g)
		res.Reset = true
		if d.open {
			d.end(&res)
		}
		res.Cells = d.unmasked
		return res
	}
	res.Cells = d.unmasked
	res.Changed, res.Box = d.compare(g)
	if res.Cells > 0 {
		res.Area = res.Changed * 1000 / res.Cells
	}
	// Cross-multiplied so that the comparisons are exact, not on the rounded Area.
	switch {
	case res.Changed*1000 > d.s.LightSwitch*res.Cells:
		res.Suppressed = true
		d.stats.Suppressed++
		d.resetBackground(g)
	case res.Changed > 0 && res.Changed*1000 >= d.s.MinArea*res.Cells:
		res.Motion = true
	}
	d.track(&res)
	return res
}

// Flush ends the open event, if any, as at the end of the input.
func (d *Detector) Flush() (Event, bool) {
	d.run = 0
	if !d.open {
		return Event{}, false
	}
	d.open = false
	return d.ev, true
}

// track advances the event state by one frame.
func (d *Detector) track(res *FrameResult) {
	switch {
	case d.open && res.Motion:
		d.gap = 0
		d.ev.extend(res)
	case d.open:
		d.gap++
		if d.gap >= d.s.EventGap {
			d.end(res)
			return
		}
	case res.Motion:
		if d.run == 0 {
			d.cand = Event{Start: res.Frame, Peak: res.Frame, PeakArea: -1}
		}
		d.run++
		d.cand.extend(res)
		if d.run >= d.s.MinFrames {
			d.open, d.gap, d.run = true, 0, 0
			d.ev = d.cand
			d.stats.Events++
			res.Started = true
		}
	default:
		d.run = 0
	}
	if d.open {
		res.EventOpen = true
		res.Event = d.ev
	}
}

func (d *Detector) end(res *FrameResult) {
	d.open, d.run = false, 0
	res.Ended = true
	res.Event = d.ev
}

func (e *Event) extend(res *FrameResult) {
	e.End = res.Frame
	if res.Area > e.PeakArea {
		e.Peak, e.PeakArea = res.Frame, res.Area
	}
	e.Box = union(e.Box, res.Box)
}

// restart sizes the detector for g and takes g as the background.
func (d *Detector) restart(g *Grid) {
	n := g.W * g.H
	if cap(d.bg) < n {
		d.bg = make([]uint16, n)
		d.held = make([]uint16, n)
		d.mask = make([]uint8, n)
	}
	d.bg, d.held, d.mask = d.bg[:n], d.held[:n], d.mask[:n]
	d.w, d.h, d.ready, d.run = g.W, g.H, true, 0
	d.unmasked = 0
	for y := 0; y < g.H; y++ {
		for x := 0; x < g.W; x++ {
			var m uint8
			for _, r := range d.s.Mask {
				// Overlap of the cell's span [x/W, (x+1)/W) with [X, X+W) in per-mille,
				// cross-multiplied to stay in integers.
				if x*1000 < (r.X+r.W)*g.W && (x+1)*1000 > r.X*g.W &&
					y*1000 < (r.Y+r.H)*g.H && (y+1)*1000 > r.Y*g.H {
					m = 1
				}
			}
			d.mask[y*g.W+x] = m
			d.unmasked += int(1 - m)
		}
	}
	d.resetBackground(g)
	d.stats.Resets++
}

func (d *Detector) resetBackground(g *Grid) {
	for i, p := range g.Pix[:len(d.bg)] {
		d.bg[i] = uint16(p) << 8
	}
	clear(d.held)
}

// compare counts the changed unmasked cells of g, bounds them, and moves the background
// toward g in the same pass. A changed cell keeps its background while the change is recent,
// so that a passing object leaves no trail; a change that lasts longer than hold frames is
// part of the scene (a parked car, or the spot where an object stood in the frame the
// background started from) and is absorbed at the normal rate.
func (d *Detector) compare(g *Grid) (int, Rect) {
	w := d.w
	alpha, thr, hold := d.alpha, d.thr, d.hold
	changed := 0
	minX, minY, maxX, maxY := w, d.h, -1, -1
	for y := 0; y < d.h; y++ {
		pix := g.Pix[y*w : y*w+w]
		bg := d.bg[y*w : y*w+w]
		held := d.held[y*w : y*w+w]
		mask := d.mask[y*w : y*w+w]
		rowMin, rowMax := w, -1
		for x, p := range pix {
			b := int32(bg[x])
			diff := int32(p)<<8 - b
			ad := diff
			if ad < 0 {
				ad = -ad
			}
			a := alpha
			if ad < thr {
				held[x] = 0
			} else if held[x] < hold {
				held[x]++
				a = 0
			}
			if ad >= thr && mask[x] == 0 {
				changed++
				rowMin = min(rowMin, x)
				rowMax = x
			}
			// diff*a fits in int32: |diff| < 2^16 and a <= 2^15.
			bg[x] = uint16(b + (diff*a)>>15)
		}
		if rowMax >= 0 {
			minY = min(minY, y)
			maxY = y
			minX = min(minX, rowMin)
			maxX = max(maxX, rowMax)
		}
	}
	if changed == 0 {
		return 0, Rect{}
	}
	x0, y0 := minX*1000/w, minY*1000/d.h
	x1, y1 := ((maxX+1)*1000+w-1)/w, ((maxY+1)*1000+d.h-1)/d.h
	return changed, Rect{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

func union(a, b Rect) Rect {
	switch {
	case a.W == 0:
		return b
	case b.W == 0:
		return a
	}
	x0, y0 := min(a.X, b.X), min(a.Y, b.Y)
	x1, y1 := max(a.X+a.W, b.X+b.W), max(a.Y+a.H, b.Y+b.H)
	return Rect{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

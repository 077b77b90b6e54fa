package motion

import (
	"bytes"
	"errors"
	"image"
	"math/rand/v2"
	"testing"
)

const seqW, seqH = 320, 240

// square is an object in a synthetic sequence: a bright square of side px pixels, present
// in frames [from, to), moving dx pixels per frame from (x, y).
type square struct {
	from, to     int
	x, y, dx, px int
	luma         uint8
}

// sequence describes synthetic frames with a known truth.
type sequence struct {
	frames     int
	pixelNoise int // uniform per-pixel noise amplitude
	blockNoise int // uniform per-8x8-block noise amplitude, which the grid does not average out
	jumpAt     int // from this frame on, everything is jumpBy brighter (0: never)
	jumpBy     int
	driftPerK  int // brightness added per 1000 frames
	objects    []square
}

func (s sequence) render(i int, pix []byte) {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	shift := s.driftPerK * i / 1000
	if s.jumpAt > 0 && i >= s.jumpAt {
		shift += s.jumpBy
	}
	var blockOff [seqW / 8 * seqH / 8]int
	if s.blockNoise > 0 {
		for b := range blockOff {
			blockOff[b] = rng.IntN(2*s.blockNoise+1) - s.blockNoise
		}
	}
	for y := 0; y < seqH; y++ {
		for x := 0; x < seqW; x++ {
			v := 60 + (x*7+y*13)%50 + shift + blockOff[(y/8)*(seqW/8)+x/8]
			if s.pixelNoise > 0 {
				v += rng.IntN(2*s.pixelNoise+1) - s.pixelNoise
			}
			for _, o := range s.objects {
				ox := o.x + o.dx*(i-o.from)
				if i >= o.from && i < o.to && x >= ox && x < ox+o.px && y >= o.y && y < o.y+o.px {
					v = int(o.luma)
				}
			}
			pix[y*seqW+x] = clamp8(v)
		}
	}
}

// input is how frames reach the detector.
type input int

const (
	inGray input = iota
	inYUYV
	inJPEG
)

// run feeds the sequence to a detector and returns every result and the events, including
// one still open at the end.
func (s sequence) run(t *testing.T, d *Detector, in input, corrupt map[int]bool) ([]FrameResult, []Event) {
	t.Helper()
	pix := make([]byte, seqW*seqH)
	yuyv := make([]byte, 2*seqW*seqH)
	var results []FrameResult
	var events []Event
	for i := 0; i < s.frames; i++ {
		s.render(i, pix)
		var res FrameResult
		var err error
		switch {
		case corrupt[i]:
			data := encodeGo(t, &image.Gray{Pix: pix, Stride: seqW, Rect: image.Rect(0, 0, seqW, seqH)}, 75)
			res, err = d.ObserveJPEG(data[:len(data)/2])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("frame %d: corrupt frame gave %v", i, err)
			}
		case in == inGray:
			res, err = d.ObserveGray(pix, seqW, seqH, seqW)
		case in == inYUYV:
			for p, v := range pix {
				yuyv[2*p], yuyv[2*p+1] = v, 128
			}
			res, err = d.ObserveYUYV(yuyv, seqW, seqH, 2*seqW)
		case in == inJPEG:
			res, err = d.ObserveJPEG(encodeGo(t, &image.Gray{Pix: pix, Stride: seqW, Rect: image.Rect(0, 0, seqW, seqH)}, 75))
		}
		if err != nil && !corrupt[i] {
			t.Fatalf("frame %d: %v", i, err)
		}
		if res.Frame != int64(i) {
			t.Fatalf("frame %d reported as %d", i, res.Frame)
		}
		if res.Ended {
			events = append(events, res.Event)
		}
		results = append(results, res)
	}
	if ev, ok := d.Flush(); ok {
		events = append(events, ev)
	}
	return results, events
}

func testSettings() Settings {
	s := DefaultSettings()
	s.EventGap = 10
	return s
}

func TestDetectorSequences(t *testing.T) {
	mover := square{from: 20, to: 60, x: 20, y: 80, dx: 4, px: 40, luma: 230}
	cases := []struct {
		name     string
		seq      sequence
		inputs   []input
		settings func(*Settings)
		// want lists the true [start, end] frames of each event.
		want [][2]int64
		// maxChanged bounds the changed cells of every frame, -1 for no bound.
		maxChanged     int
		wantSuppressed []int64
	}{
		{
			name:       "moving object",
			seq:        sequence{frames: 90, pixelNoise: 12, objects: []square{mover}},
			inputs:     []input{inGray, inYUYV, inJPEG},
			want:       [][2]int64{{20, 59}},
			maxChanged: -1,
		},
		{
			name:   "sensor noise under the threshold",
			seq:    sequence{frames: 120, pixelNoise: 30, blockNoise: 7},
			inputs: []input{inGray, inJPEG},
			// The tail of the noise flips a stray cell now and then, never the 12 cells
			// (1%) that make a motion frame.
			maxChanged: 3,
		},
		{
			name:   "motion inside a mask",
			seq:    sequence{frames: 90, pixelNoise: 12, objects: []square{mover}},
			inputs: []input{inGray},
			settings: func(s *Settings) {
				s.Mask = []Rect{{X: 0, Y: 250, W: 1000, H: 300}, {X: 900, Y: 0, W: 100, H: 100}}
			},
			maxChanged: 0,
		},
		{
			name:           "sudden global brightness jump",
			seq:            sequence{frames: 90, pixelNoise: 12, jumpAt: 30, jumpBy: 70},
			inputs:         []input{inGray, inJPEG},
			maxChanged:     -1,
			wantSuppressed: []int64{30},
		},
		{
			name:       "slow illumination drift",
			seq:        sequence{frames: 400, pixelNoise: 12, driftPerK: 250},
			inputs:     []input{inGray},
			maxChanged: 0,
		},
		{
			name: "two objects in two bursts",
			seq: sequence{frames: 150, pixelNoise: 12, objects: []square{
				{from: 15, to: 40, x: 10, y: 10, dx: 5, px: 48, luma: 240},
				{from: 80, to: 120, x: 300, y: 150, dx: -6, px: 32, luma: 10},
			}},
			inputs:     []input{inGray, inJPEG},
			want:       [][2]int64{{15, 39}, {80, 119}},
			maxChanged: -1,
		},
		{
			name:       "short flicker below consecutive frames",
			seq:        sequence{frames: 60, pixelNoise: 12, objects: []square{{from: 20, to: 22, x: 100, y: 100, px: 64, luma: 250}}},
			inputs:     []input{inGray},
			maxChanged: -1,
		},
		{
			// The background starts from a frame with the object in it, so where it stood
			// stays "changed" after it leaves; that change is absorbed after the hold
			// (200 frames at the default rate) instead of lasting forever.
			name:       "object in the first frame leaves",
			seq:        sequence{frames: 450, pixelNoise: 12, objects: []square{{from: 0, to: 40, x: 20, y: 80, dx: 4, px: 40, luma: 230}}},
			inputs:     []input{inGray},
			want:       [][2]int64{{-1, -1}},
			maxChanged: -1,
		},
		{
			name:   "object that stops becomes background",
			seq:    sequence{frames: 400, pixelNoise: 12, objects: []square{{from: 20, to: 400, x: 100, y: 100, px: 64, luma: 250}}},
			inputs: []input{inGray},
			settings: func(s *Settings) {
				s.BackgroundRate = 200
			},
			// It counts as motion until the slow rate has absorbed it; the event must end
			// well before the sequence does.
			want:       [][2]int64{{20, -1}},
			maxChanged: -1,
		},
	}
	for _, c := range cases {
		for _, in := range c.inputs {
			t.Run(c.name+"/"+[]string{"gray", "yuyv", "jpeg"}[in], func(t *testing.T) {
				s := testSettings()
				if c.settings != nil {
					c.settings(&s)
				}
				d, err := NewDetector(s)
				if err != nil {
					t.Fatal(err)
				}
				results, events := c.seq.run(t, d, in, nil)
				if len(events) != len(c.want) {
					t.Fatalf("%d events %+v, want %d %v", len(events), events, len(c.want), c.want)
				}
				for i, w := range c.want {
					ev := events[i]
					if w[0] >= 0 && abs64(ev.Start-w[0]) > 1 {
						t.Errorf("event %d starts at %d, truth %d", i, ev.Start, w[0])
					}
					if w[1] >= 0 && abs64(ev.End-w[1]) > 1 {
						t.Errorf("event %d ends at %d, truth %d", i, ev.End, w[1])
					}
					if w[1] < 0 && ev.End > int64(c.seq.frames)-int64(s.EventGap)-50 {
						t.Errorf("event %d never ended (end %d): a lasting change was not absorbed", i, ev.End)
					}
					if ev.Peak < ev.Start || ev.Peak > ev.End || ev.PeakArea < s.MinArea || ev.Box.W == 0 {
						t.Errorf("event %d has a bad peak or box: %+v", i, ev)
					}
				}
				var suppressed []int64
				for _, r := range results {
					if c.maxChanged >= 0 && r.Changed > c.maxChanged {
						t.Fatalf("frame %d: %d cells changed, want at most %d", r.Frame, r.Changed, c.maxChanged)
					}
					if r.Suppressed {
						suppressed = append(suppressed, r.Frame)
					}
				}
				if len(suppressed) != len(c.wantSuppressed) || (len(suppressed) > 0 && suppressed[0] != c.wantSuppressed[0]) {
					t.Errorf("suppressed frames %v, want %v", suppressed, c.wantSuppressed)
				}
				if st := d.Stats(); st.Events != int64(len(c.want)) || st.Frames != int64(c.seq.frames) || st.Resets != 1 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestDetectorBadFramesInStream: rejected frames are counted and skipped, and the event
// around them is still found whole.
func TestDetectorBadFramesInStream(t *testing.T) {
	d, err := NewDetector(testSettings())
	if err != nil {
		t.Fatal(err)
	}
	seq := sequence{frames: 90, pixelNoise: 12, objects: []square{{from: 20, to: 60, x: 20, y: 80, dx: 4, px: 40, luma: 230}}}
	corrupt := map[int]bool{5: true, 30: true, 37: true, 44: true, 80: true}
	_, events := seq.run(t, d, inJPEG, corrupt)
	if len(events) != 1 || abs64(events[0].Start-20) > 1 || abs64(events[0].End-59) > 1 {
		t.Fatalf("events %+v, want one from 20 to 59", events)
	}
	if st := d.Stats(); st.Errors != int64(len(corrupt)) || st.Frames != 90 {
		t.Fatalf("stats %+v, want %d errors in 90 frames", st, len(corrupt))
	}
}

// TestDetectorSizeChangeResets: a frame of another size restarts the background instead of
// being compared with the old one, and closes an open event.
func TestDetectorSizeChangeResets(t *testing.T) {
	d, err := NewDetector(testSettings())
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{50}, 320*240)
	small := bytes.Repeat([]byte{200}, 160*120)
	var resets []int64
	for i := 0; i < 30; i++ {
		frame, w, h := big, 320, 240
		if i >= 10 && i < 20 {
			frame, w, h = small, 160, 120
		}
		res, err := d.ObserveGray(frame, w, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if res.Motion || res.Suppressed || res.Changed != 0 {
			t.Fatalf("frame %d: %+v", i, res)
		}
		if res.Reset {
			resets = append(resets, res.Frame)
		}
	}
	if len(resets) != 3 || resets[0] != 0 || resets[1] != 10 || resets[2] != 20 {
		t.Fatalf("resets at %v, want [0 10 20]", resets)
	}
}

func TestDetectorMaskCells(t *testing.T) {
	cases := []struct {
		name      string
		mask      []Rect
		w, h      int
		wantCells int
	}{
		{"none", nil, 40, 30, 1200},
		{"left half", []Rect{{0, 0, 500, 1000}}, 40, 30, 600},
		{"a sliver still masks the cells it touches", []Rect{{0, 0, 1, 1}}, 40, 30, 1199},
		{"overlapping regions", []Rect{{0, 0, 500, 1000}, {250, 0, 500, 1000}}, 40, 30, 300},
		{"everything", []Rect{{0, 0, 1000, 1000}}, 40, 30, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testSettings()
			s.Mask = c.mask
			d, err := NewDetector(s)
			if err != nil {
				t.Fatal(err)
			}
			g := Grid{W: c.w, H: c.h, Pix: make([]byte, c.w*c.h)}
			if res, err := d.Observe(&g); err != nil || res.Cells != c.wantCells {
				t.Fatalf("%d unmasked cells, want %d", res.Cells, c.wantCells)
			}
			for i := range g.Pix {
				g.Pix[i] = 255
			}
			res, err := d.Observe(&g)
			if err != nil {
				t.Fatal(err)
			}
			if res.Changed != c.wantCells || res.Motion {
				// Everything unmasked changed: a light switch, not motion.
				if c.wantCells != 0 || res.Changed != 0 {
					t.Fatalf("all-white frame: %+v", res)
				}
			}
		})
	}
}

func TestObserveRejectsBadGrids(t *testing.T) {
	d, err := NewDetector(testSettings())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []Grid{{W: 4, H: 4, Pix: make([]byte, 15)}, {W: 0, H: 4}, {W: 2000, H: 1, Pix: make([]byte, 2000)}} {
		if _, err := d.Observe(&g); !errors.Is(err, ErrFrameSize) {
			t.Errorf("grid %dx%d with %d cells: %v, want ErrFrameSize", g.W, g.H, len(g.Pix), err)
		}
	}
	if st := d.Stats(); st.Errors != 3 || st.Frames != 3 {
		t.Errorf("stats %+v, want 3 rejected frames", st)
	}
}

func TestSettingsValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Settings)
		ok     bool
	}{
		{"defaults", func(*Settings) {}, true},
		{"threshold 0", func(s *Settings) { s.Threshold = 0 }, false},
		{"threshold 256", func(s *Settings) { s.Threshold = 256 }, false},
		{"min area 1001", func(s *Settings) { s.MinArea = 1001 }, false},
		{"min frames 0", func(s *Settings) { s.MinFrames = 0 }, false},
		{"event gap 0", func(s *Settings) { s.EventGap = 0 }, false},
		{"rate 0", func(s *Settings) { s.BackgroundRate = 0 }, false},
		{"rate 1000", func(s *Settings) { s.BackgroundRate = 1000 }, true},
		{"light switch off", func(s *Settings) { s.LightSwitch = 1000 }, true},
		{"mask outside", func(s *Settings) { s.Mask = []Rect{{X: 900, Y: 0, W: 200, H: 10}} }, false},
		{"mask empty", func(s *Settings) { s.Mask = []Rect{{X: 10, Y: 10, W: 0, H: 10}} }, false},
		{"17 masks", func(s *Settings) { s.Mask = make([]Rect, 17) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := DefaultSettings()
			c.modify(&s)
			err := s.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, c.ok)
			}
			if _, err := NewDetector(s); (err == nil) != c.ok {
				t.Fatalf("NewDetector() = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

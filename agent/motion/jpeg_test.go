package motion

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDCGridMatchesDjpeg holds the reader to an independent reference: libjpeg-turbo's
// djpeg at 1/8 scale in grayscale, which is the DC term of each luma block.
func TestDCGridMatchesDjpeg(t *testing.T) {
	djpeg := needTool(t, "djpeg")
	dir := t.TempDir()
	corpus := append(goCorpus(t), cjpegCorpus(t, dir)...)
	if len(corpus) < 30 {
		t.Fatalf("corpus has %d frames, want at least 30", len(corpus))
	}
	noDHT, restart := 0, 0
	r := NewJPEGReader()
	var g Grid
	for _, f := range corpus {
		t.Run(f.name, func(t *testing.T) {
			if !hasDHT(f.data) {
				noDHT++
			}
			if bytes.Contains(f.data, []byte{0xFF, 0xDD}) {
				restart++
			}
			want := djpegGrid(t, djpeg, dir, f.name, f.data)
			if err := r.DecodeDC(f.data, &g); err != nil {
				t.Fatalf("DecodeDC: %v", err)
			}
			if g.W != want.W || g.H != want.H {
				t.Fatalf("grid %dx%d, djpeg %dx%d", g.W, g.H, want.W, want.H)
			}
			off := 0
			for i := range want.Pix {
				d := int(g.Pix[i]) - int(want.Pix[i])
				if d < -1 || d > 1 {
					t.Fatalf("cell (%d,%d) = %d, djpeg %d", i%g.W, i/g.W, g.Pix[i], want.Pix[i])
				}
				if d != 0 {
					off++
				}
			}
			// The DC arithmetic is libjpeg's, so in practice every cell is equal; a rounding
			// slip would show as many cells off by one, which ±1 alone would let through.
			if off*100 > len(want.Pix) {
				t.Fatalf("%d of %d cells differ by 1", off, len(want.Pix))
			}
		})
	}
	if noDHT < 5 || restart < 4 {
		t.Errorf("corpus has %d frames without DHT and %d with restart intervals; want at least 5 and 4", noDHT, restart)
	}
}

// craft returns a copy of data with a function applied to the payload of the first segment
// with marker m.
func patchSegment(t *testing.T, data []byte, m byte, patch func(seg []byte)) []byte {
	t.Helper()
	out := bytes.Clone(data)
	for i := 2; i+4 <= len(out); i += 2 + int(binary.BigEndian.Uint16(out[i+2:])) {
		if out[i+1] == m {
			patch(out[i+4 : i+2+int(binary.BigEndian.Uint16(out[i+2:]))])
			return out
		}
	}
	t.Fatalf("no marker 0x%02X", m)
	return nil
}

func TestDecodeDCRejectsBadFrames(t *testing.T) {
	cjpeg := needTool(t, "cjpeg")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.ppm")
	img := sceneImage(64, 48, 7)
	writePNM(t, src, img, false)
	run := func(args ...string) []byte {
		out, err := exec.Command(cjpeg, append(args, src)...).Output()
		if err != nil {
			t.Fatalf("cjpeg %v: %v", args, err)
		}
		return out
	}
	good := encodeGo(t, img, 75)
	cmyk := patchSegment(t, good, 0xC0, func(seg []byte) { seg[5] = 4 })
	// A 4-component header needs 3 more bytes to be well formed; the count alone is what
	// gets it rejected, before anything else is read.
	twelve := patchSegment(t, good, 0xC0, func(seg []byte) { seg[0] = 12 })
	rgbIDs := patchSegment(t, stripAPP0(t, good), 0xC0, func(seg []byte) { seg[6], seg[9], seg[12] = 'R', 'G', 'B' })
	noQuant := patchSegment(t, good, 0xDB, func(seg []byte) { seg[0] = 0x03 }) // tables land in slot 3
	badHuff := patchSegment(t, good, 0xC4, func(seg []byte) { seg[1+15] = 200 })

	// Restart markers where no restart interval was declared, many of them: rejected, and
	// without recording them all.
	sos := bytes.Index(good, []byte{0xFF, 0xDA})
	manyRST := append(bytes.Clone(good[:sos+14]), bytes.Repeat([]byte{0xFF, 0xD0}, 10000)...)
	manyRST = append(manyRST, good[sos+14:]...)

	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	randomSOI := append([]byte{0xFF, 0xD8}, random...)

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotJPEG},
		{"random", random, ErrNotJPEG},
		{"random after SOI", randomSOI, nil},
		{"progressive", run("-progressive"), ErrProgressive},
		{"arithmetic", run("-arithmetic"), ErrArithmetic},
		{"12-bit", twelve, ErrPrecision},
		{"CMYK", cmyk, ErrColorSpace},
		{"RGB by component IDs", rgbIDs, ErrColorSpace},
		{"RGB by Adobe transform", run("-rgb"), ErrColorSpace},
		{"quantization table missing", noQuant, ErrCorrupt},
		{"bad Huffman table", badHuff, ErrCorrupt},
		{"restart markers without DRI", manyRST, ErrCorrupt},
		{"SOI only", []byte{0xFF, 0xD8}, ErrTruncated},
		{"EOI only", []byte{0xFF, 0xD8, 0xFF, 0xD9}, ErrCorrupt},
	}
	r := NewJPEGReader()
	var g Grid
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := r.DecodeDC(c.data, &g)
			if err == nil {
				t.Fatal("DecodeDC accepted the frame")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %q, want %q", err, c.want)
			}
			t.Logf("%v", err)
		})
	}
	if cap(r.segs) > 16 {
		t.Errorf("restart offsets grew to %d entries", cap(r.segs))
	}
	// A good frame still decodes after all that: no state leaks from bad frames.
	if err := r.DecodeDC(good, &g); err != nil {
		t.Fatalf("good frame after bad ones: %v", err)
	}
}

// stripAPP0 drops the JFIF marker, which would otherwise declare the frame YCbCr.
func stripAPP0(t *testing.T, data []byte) []byte {
	t.Helper()
	if data[2] != 0xFF || data[3] != 0xE0 {
		return data
	}
	n := int(binary.BigEndian.Uint16(data[4:]))
	return append(bytes.Clone(data[:2]), data[4+n:]...)
}

// TestDecodeDCTruncated cuts frames at every length in steps: each cut either errors or,
// when only trailing bytes after the luma data are gone, still gives the full grid.
func TestDecodeDCTruncated(t *testing.T) {
	r := NewJPEGReader()
	var g, full Grid
	for _, f := range goCorpus(t) {
		if err := r.DecodeDC(f.data, &full); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		full.Pix = bytes.Clone(full.Pix)
		errs := 0
		for n := 0; n < len(f.data)-2; n += 1 + len(f.data)/300 {
			err := r.DecodeDC(f.data[:n], &g)
			if err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", f.name, n, len(f.data))
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotJPEG) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut to %d: unexpected error %v", f.name, n, err)
			}
			errs++
		}
		if errs == 0 {
			t.Fatalf("%s: no cut tried", f.name)
		}
	}
}

func TestDecodeDCMemoryBounded(t *testing.T) {
	r := NewJPEGReader()
	var g Grid
	huge := make([]byte, MaxFrameBytes+1)
	huge[0], huge[1] = 0xFF, 0xD8
	if err := r.DecodeDC(huge, &g); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized frame: %v, want ErrTooLarge", err)
	}
	big := patchSegment(t, encodeGo(t, sceneImage(32, 32, 1), 75), 0xC0, func(seg []byte) {
		binary.BigEndian.PutUint16(seg[1:], 60000)
		binary.BigEndian.PutUint16(seg[3:], 60000)
	})
	if err := r.DecodeDC(big, &g); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("60000x60000 header: %v, want ErrTooLarge", err)
	}
	if cap(r.ent) != 0 || cap(g.Pix) != 0 {
		t.Fatalf("rejected frames grew buffers: ent %d, grid %d", cap(r.ent), cap(g.Pix))
	}
}

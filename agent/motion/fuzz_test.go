package motion

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzJPEG feeds arbitrary bytes to the DC reader: it must never panic, never hold more
// than its fixed bound, and report every failure as one of the package's errors. Run it with
// go test -run=^$ -fuzz=FuzzJPEG -fuzztime=60s ./agent/motion
func FuzzJPEG(f *testing.F) {
	for _, c := range goCorpusSized(f, [][2]int{{24, 16}, {17, 9}, {40, 24}}) {
		f.Add(c.data)
		f.Add(c.data[:len(c.data)*2/3])
	}
	// Small frames with restart intervals and other samplings reach those paths cheaply;
	// they need cjpeg, so without it the fuzzer runs on the image/jpeg seeds alone.
	if cjpeg, err := exec.LookPath("cjpeg"); err == nil {
		src := filepath.Join(f.TempDir(), "seed.ppm")
		writePNM(f, src, sceneImage(40, 24, 6), false)
		for _, args := range [][]string{{"-restart", "2B", "-sample", "2x1"}, {"-restart", "1", "-sample", "1x1"}} {
			if out, err := exec.Command(cjpeg, append(args, src)...).Output(); err == nil {
				f.Add(out)
			}
		}
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xD9})
	f.Add([]byte("not a jpeg"))
	known := []error{ErrNotJPEG, ErrTruncated, ErrCorrupt, ErrProgressive, ErrArithmetic,
		ErrPrecision, ErrColorSpace, ErrUnsupported, ErrTooLarge}
	r := NewJPEGReader()
	var g Grid
	f.Fuzz(func(t *testing.T, data []byte) {
		err := r.DecodeDC(data, &g)
		if cap(r.ent) > len(data)+entropyPad && cap(r.ent) > MaxFrameBytes+entropyPad {
			t.Fatalf("entropy buffer grew to %d", cap(r.ent))
		}
		if err != nil {
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("error outside the package's kinds: %v", err)
		}
		if g.W != (r.width+7)/8 || g.H != (r.height+7)/8 || len(g.Pix) != g.W*g.H {
			t.Fatalf("grid %dx%d (%d cells) for a %dx%d frame", g.W, g.H, len(g.Pix), r.width, r.height)
		}
		// Decoding is deterministic: the same bytes give the same grid.
		first := bytes.Clone(g.Pix)
		if err := r.DecodeDC(data, &g); err != nil || !bytes.Equal(first, g.Pix) {
			t.Fatalf("second decode differs: %v", err)
		}
	})
}

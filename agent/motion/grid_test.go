package motion

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// naiveMean is the reference reduction: the rounded mean of each 8x8 block, or of the
// pixels present in a partial edge block.
func naiveMean(luma func(x, y int) int, width, height int) Grid {
	gw, gh := GridSize(width, height)
	g := Grid{W: gw, H: gh, Pix: make([]byte, gw*gh)}
	for by := 0; by < gh; by++ {
		for bx := 0; bx < gw; bx++ {
			sum, n := 0, 0
			for y := by * 8; y < min(by*8+8, height); y++ {
				for x := bx * 8; x < min(bx*8+8, width); x++ {
					sum += luma(x, y)
					n++
				}
			}
			g.Pix[by*gw+bx] = uint8((sum + n/2) / n)
		}
	}
	return g
}

func TestReduceMatchesNaive(t *testing.T) {
	cases := []struct {
		w, h, pad int
	}{
		{640, 480, 0}, {1280, 720, 0}, {320, 240, 64}, {34, 17, 6}, {8, 8, 0}, {6, 5, 2}, {2, 1, 0}, {130, 9, 0},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var g Grid
	for _, c := range cases {
		// Gray.
		stride := c.w + c.pad
		gray := make([]byte, stride*c.h)
		for i := range gray {
			gray[i] = byte(rng.Uint32())
		}
		want := naiveMean(func(x, y int) int { return int(gray[y*stride+x]) }, c.w, c.h)
		if err := ReduceGray(&g, gray, c.w, c.h, stride); err != nil {
			t.Fatalf("gray %dx%d: %v", c.w, c.h, err)
		}
		compareGrids(t, "gray", c.w, c.h, g, want)
		// YUYV: chroma bytes are random too and must not leak into the means.
		ystride := 2*c.w + 2*c.pad
		yuyv := make([]byte, ystride*c.h)
		for i := range yuyv {
			yuyv[i] = byte(rng.Uint32())
		}
		want = naiveMean(func(x, y int) int { return int(yuyv[y*ystride+2*x]) }, c.w, c.h)
		if err := ReduceYUYV(&g, yuyv, c.w, c.h, ystride); err != nil {
			t.Fatalf("yuyv %dx%d: %v", c.w, c.h, err)
		}
		compareGrids(t, "yuyv", c.w, c.h, g, want)
	}
}

func compareGrids(t *testing.T, kind string, w, h int, got, want Grid) {
	t.Helper()
	if got.W != want.W || got.H != want.H {
		t.Fatalf("%s %dx%d: grid %dx%d, want %dx%d", kind, w, h, got.W, got.H, want.W, want.H)
	}
	for i := range want.Pix {
		if got.Pix[i] != want.Pix[i] {
			t.Fatalf("%s %dx%d: cell (%d,%d) = %d, want %d", kind, w, h, i%want.W, i/want.W, got.Pix[i], want.Pix[i])
		}
	}
}

func TestReduceRejectsBadSizes(t *testing.T) {
	var g Grid
	cases := []struct {
		name            string
		yuyv            bool
		n, w, h, stride int
		want            error
	}{
		{"odd YUYV width", true, 100, 5, 2, 10, ErrFrameSize},
		{"short buffer", false, 99, 10, 10, 10, ErrFrameSize},
		{"short stride", false, 100, 10, 10, 9, ErrFrameSize},
		{"zero size", false, 0, 0, 0, 0, ErrFrameSize},
		{"too wide", false, 9000, 9000, 1, 9000, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.yuyv {
				err = ReduceYUYV(&g, make([]byte, c.n), c.w, c.h, c.stride)
			} else {
				err = ReduceGray(&g, make([]byte, c.n), c.w, c.h, c.stride)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}

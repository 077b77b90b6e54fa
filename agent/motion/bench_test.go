package motion

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"testing"
)

// Benchmarks for docs/benchmarks.md (hack/bench-motion.sh runs them). Each MJPEG size is
// measured twice in the same run, the DC path and the baseline a simple implementation
// would use, so that their ratio is free of the machine's noise.

// benchFrames renders n frames of w x h with an object crossing them, so detection has work.
func benchFrames(w, h, n int) []*image.RGBA {
	base := sceneImage(w, h, 11)
	frames := make([]*image.RGBA, n)
	side := h / 5
	for i := range frames {
		img := image.NewRGBA(base.Rect)
		copy(img.Pix, base.Pix)
		x0 := i * (w - side) / n
		for y := h / 3; y < h/3+side; y++ {
			row := img.Pix[y*img.Stride:]
			for x := x0; x < x0+side; x++ {
				row[4*x], row[4*x+1], row[4*x+2] = 240, 240, 230
			}
		}
		frames[i] = img
	}
	return frames
}

func benchJPEGs(b *testing.B, w, h int) [][]byte {
	b.Helper()
	var out [][]byte
	for _, img := range benchFrames(w, h, 8) {
		var buf bytes.Buffer
		// Quality 80 4:2:0 is what UVC cameras typically send.
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
			b.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

func BenchmarkYUYV(b *testing.B) {
	const w, h = 640, 480
	var frames [][]byte
	for _, img := range benchFrames(w, h, 8) {
		y := grayOf(img)
		f := make([]byte, 2*w*h)
		for i, v := range y.Pix {
			f[2*i], f[2*i+1] = v, 128
		}
		frames = append(frames, f)
	}
	b.Run(fmt.Sprintf("%dx%d/engine", w, h), func(b *testing.B) {
		d, err := NewDetector(DefaultSettings())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := d.ObserveYUYV(frames[i%len(frames)], w, h, 2*w); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The baseline: the straightforward reduction, one luma byte at a time, then the same
	// detector.
	b.Run(fmt.Sprintf("%dx%d/baseline", w, h), func(b *testing.B) {
		d, err := NewDetector(DefaultSettings())
		if err != nil {
			b.Fatal(err)
		}
		gw, gh := GridSize(w, h)
		g := Grid{W: gw, H: gh, Pix: make([]byte, gw*gh)}
		sums := make([]int, gw*gh)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f := frames[i%len(frames)]
			clear(sums)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					sums[(y/8)*gw+x/8] += int(f[y*2*w+2*x])
				}
			}
			for c, s := range sums {
				g.Pix[c] = uint8((s + 32) / 64)
			}
			if _, err := d.Observe(&g); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMJPEG(b *testing.B) {
	for _, sz := range [][2]int{{640, 480}, {1280, 720}} {
		w, h := sz[0], sz[1]
		frames := benchJPEGs(b, w, h)
		b.Run(fmt.Sprintf("%dx%d/engine", w, h), func(b *testing.B) {
			d, err := NewDetector(DefaultSettings())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(frames[0])))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := d.ObserveJPEG(frames[i%len(frames)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The baseline: decode the whole frame with image/jpeg, take its gray (the Y plane,
		// the cheapest conversion there is), reduce it to the same grid and run the same
		// detector. Anything simpler would do more work, so the ratio is a lower bound.
		b.Run(fmt.Sprintf("%dx%d/baseline", w, h), func(b *testing.B) {
			d, err := NewDetector(DefaultSettings())
			if err != nil {
				b.Fatal(err)
			}
			var g Grid
			b.SetBytes(int64(len(frames[0])))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				img, err := jpeg.Decode(bytes.NewReader(frames[i%len(frames)]))
				if err != nil {
					b.Fatal(err)
				}
				ycc := img.(*image.YCbCr)
				if err := ReduceGray(&g, ycc.Y, w, h, ycc.YStride); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Observe(&g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

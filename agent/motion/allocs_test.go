package motion

import (
	"testing"
)

// TestSteadyStateAllocatesNothing: once a detector has seen a frame of a size, further
// frames of any input kind allocate nothing (the benchmarks report the same as allocs/op).
func TestSteadyStateAllocatesNothing(t *testing.T) {
	const w, h = 160, 120
	frames := benchFrames(w, h, 4)
	var jpegs, yuyvs [][]byte
	for _, img := range frames {
		jpegs = append(jpegs, encodeGo(t, img, 80))
		g := grayOf(img)
		f := make([]byte, 2*w*h)
		for i, v := range g.Pix {
			f[2*i], f[2*i+1] = v, 128
		}
		yuyvs = append(yuyvs, f)
	}
	d, err := NewDetector(DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	step := func() {
		if _, err := d.ObserveJPEG(jpegs[i%len(jpegs)]); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ObserveYUYV(yuyvs[i%len(yuyvs)], w, h, 2*w); err != nil {
			t.Fatal(err)
		}
		i++
	}
	step()
	if n := testing.AllocsPerRun(50, step); n != 0 {
		t.Fatalf("%.1f allocations per frame pair in steady state", n)
	}
}

package stream

import (
	"slices"
	"testing"
	"time"
)

func TestPacerAdmits(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x * float64(time.Millisecond))
		}
		return d
	}
	every := func(n int, step float64) []time.Duration {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i) * step
		}
		return ms(v...)
	}
	tests := []struct {
		name   string
		maxFPS int
		at     []time.Duration // capture times after an arbitrary origin
		want   []int           // indexes of the admitted frames
	}{
		{name: "uncapped admits every frame", maxFPS: 0, at: every(5, 33), want: []int{0, 1, 2, 3, 4}},
		{name: "5 fps from 30 fps is every sixth frame", maxFPS: 5, at: every(13, 33), want: []int{0, 6, 12}},
		{name: "15 fps from 30 fps is every other frame", maxFPS: 15, at: every(7, 33.3), want: []int{0, 2, 4, 6}},
		{
			name:   "15 fps from a jittery 30 fps camera is still every other frame",
			maxFPS: 15, at: ms(0, 34, 66, 101, 132, 166, 199, 234),
			want: []int{0, 2, 4, 6},
		},
		{name: "a cap above the camera rate admits every frame", maxFPS: 60, at: every(5, 33), want: []int{0, 1, 2, 3, 4}},
		{name: "a duplicate capture time is not admitted twice", maxFPS: 10, at: ms(0, 0, 100), want: []int{0, 2}},
		{
			name:   "after a pause the rate restarts instead of bursting",
			maxFPS: 10, at: ms(0, 100, 1000, 1033, 1066, 1100),
			want: []int{0, 1, 2, 5},
		},
		{
			name:   "a clock that goes back restarts the rate",
			maxFPS: 10, at: ms(1000, 1100, 500, 533, 600),
			want: []int{0, 1, 2, 4},
		},
	}
	origin := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(tt.maxFPS)
			var got []int
			for i, d := range tt.at {
				if p.admit(origin.Add(d)) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("admitted %v, want %v", got, tt.want)
			}
		})
	}
}

package benchresult

import (
	"math"
	"slices"
	"testing"
)

func TestSummarizeAndQuantile(t *testing.T) {
	for _, tc := range []struct {
		xs               []float64
		min, median, max float64
		p99              float64
	}{
		{[]float64{3, 1, 2}, 1, 2, 3, 2.98},
		{[]float64{4, 1, 3, 2}, 1, 2.5, 4, 3.97},
		{[]float64{7}, 7, 7, 7, 7},
	} {
		s := Summarize(tc.xs)
		if s.N != len(tc.xs) || s.Min != tc.min || s.Median != tc.median || s.Max != tc.max {
			t.Errorf("Summarize(%v) = %+v", tc.xs, s)
		}
		cp := slices.Clone(tc.xs)
		slices.Sort(cp)
		if got := Quantile(cp, 0.99); math.Abs(got-tc.p99) > 1e-9 {
			t.Errorf("Quantile(%v, 0.99) = %v, want %v", cp, got, tc.p99)
		}
	}
	if s := Summarize(nil); s.N != 0 {
		t.Errorf("Summarize(nil) = %+v", s)
	}
	if !math.IsNaN(Quantile(nil, 0.5)) || F(math.NaN(), 2) != "n/a" {
		t.Error("no samples should read n/a")
	}
}

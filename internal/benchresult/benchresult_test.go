package benchresult

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
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

func TestSaveWritesThePartAndSaysWhatItMet(t *testing.T) {
	dir := t.TempDir()
	p := Part{Name: "token", Title: "Token check", Targets: []Target{
		{What: "cached verification", Want: "< 2000 ns", Got: "75 ns", Met: true},
		{What: "uncached ratio", Want: "<= 1.30x", Got: "1.41x"},
	}}
	var log strings.Builder
	if err := p.Save(dir, &log); err != nil {
		t.Fatal(err)
	}
	want := "target: cached verification: want < 2000 ns, got 75 ns: MET\n" +
		"target: uncached ratio: want <= 1.30x, got 1.41x: NOT MET\n" +
		"wrote " + filepath.Join(dir, "token.json") + "\n"
	if log.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", log.String(), want)
	}
	parts, err := ReadDir(dir)
	if err != nil || len(parts) != 1 || parts[0].Title != "Token check" || len(parts[0].Targets) != 2 || parts[0].Targets[1].Met {
		t.Errorf("read back %+v, %v", parts, err)
	}
	if err := (Part{}).Save(dir, &log); err == nil {
		t.Error("a part without a name was saved")
	}
}

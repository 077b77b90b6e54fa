package main

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/camfleet/camfleet/internal/benchresult"
)

// draw renders pl into path; the file's extension (.svg, .png) picks the format.
func draw(pl benchresult.Plot, path string) error {
	p := plot.New()
	p.Title.Text = pl.Title
	p.X.Label.Text = pl.XLabel
	p.Y.Label.Text = pl.YLabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	switch pl.Kind {
	case benchresult.Lines:
		p.Legend.Left = false
		p.Legend.YOffs = -vg.Points(40)
		for i, s := range pl.Series {
			if len(s.X) != len(s.Y) {
				return fmt.Errorf("series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
			}
			pts := make(plotter.XYs, len(s.X))
			for j := range s.X {
				pts[j].X, pts[j].Y = s.X[j], s.Y[j]
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return fmt.Errorf("series %q: %w", s.Name, err)
			}
			l.Color = plotutil.Color(i)
			l.Dashes = plotutil.Dashes(i)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.Name, l)
		}
	case benchresult.Bars:
		width := vg.Points(18)
		n := len(pl.Series)
		for i, s := range pl.Series {
			if len(s.Y) != len(pl.Categories) {
				return fmt.Errorf("series %q has %d values for %d categories", s.Name, len(s.Y), len(pl.Categories))
			}
			bc, err := plotter.NewBarChart(plotter.Values(s.Y), width)
			if err != nil {
				return fmt.Errorf("series %q: %w", s.Name, err)
			}
			bc.Color = plotutil.Color(i)
			bc.LineStyle.Width = 0
			// Side by side, centred on the category.
			bc.Offset = vg.Length(float64(i)-float64(n-1)/2) * width
			p.Add(bc)
			p.Legend.Add(s.Name, bc)
		}
		p.NominalX(pl.Categories...)
		p.Y.Min = 0
	default:
		return fmt.Errorf("unknown plot kind %q", pl.Kind)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

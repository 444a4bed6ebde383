package lab

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Charts are SVG: text, so they diff in review and render on GitHub and
// in the dashboard without a decoder; gonum/plot draws them (a plotting
// library rather than hand-written SVG, as the issue asks).

// series is one line of a line chart.
type series struct {
	name   string
	xs, ys []float64
}

// lineChart draws series as lines with points and saves the chart as SVG
// at path.
func lineChart(path, title, xLabel, yLabel string, logX bool, ss []series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	var args []any
	for _, s := range ss {
		xy := make(plotter.XYs, len(s.xs))
		for i := range s.xs {
			xy[i].X, xy[i].Y = s.xs[i], s.ys[i]
		}
		args = append(args, s.name, xy)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("lab: chart %s: %w", filepath.Base(path), err)
	}
	p.Legend.Top = true
	return save(p, path)
}

// barSeries is one colour of a grouped bar chart: a value per group.
type barSeries struct {
	name   string
	values []float64
}

// barChart draws groups of bars side by side, one bar per series in each
// group, and saves the chart as SVG at path.
func barChart(path, title, yLabel string, groups []string, ss []barSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	width := vg.Points(60 / float64(max(len(ss), 1)))
	for i, s := range ss {
		b, err := plotter.NewBarChart(plotter.Values(s.values), width)
		if err != nil {
			return fmt.Errorf("lab: chart %s: %w", filepath.Base(path), err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(i)-float64(len(ss)-1)/2) * width
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.Legend.Top = true
	p.NominalX(groups...)
	return save(p, path)
}

func save(p *plot.Plot, path string) error {
	// Headroom above the data, so the legend (top right) does not cover
	// the tallest bar or point.
	if p.Y.Max > 0 {
		p.Y.Max *= 1.35
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("lab: saving chart: %w", err)
	}
	return nil
}

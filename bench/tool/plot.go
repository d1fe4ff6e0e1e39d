package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The plot is drawn by hand on an RGBA image: two panels with log-scale y
// axes, bars for restart latency and lines for memory per service count.
// Text uses basicfont's 7x13 bitmap face.

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{215, 215, 215, 255}
	// one colour per supervisor, in allSups order
	palette = map[string]color.RGBA{
		"horust":      {214, 39, 40, 255},
		"horust-nocg": {255, 127, 14, 255},
		"floor":       {100, 100, 100, 255},
		"tini":        {31, 119, 180, 255},
		"dumb-init":   {23, 190, 207, 255},
		"s6":          {44, 160, 44, 255},
		"runit":       {148, 103, 189, 255},
		"supervisord": {140, 86, 75, 255},
	}
)

type canvas struct{ img *image.RGBA }

func (c canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	for y := min(y0, y1); y <= max(y0, y1); y++ {
		for x := min(x0, x1); x <= max(x0, x1); x++ {
			c.img.SetRGBA(x, y, col)
		}
	}
}

// line draws a line w pixels thick.
func (c canvas) line(x0, y0, x1, y1, w int, col color.RGBA) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		x := x0 + (x1-x0)*i/steps
		y := y0 + (y1-y0)*i/steps
		c.rect(x-w/2, y-w/2, x+(w-1)/2, y+(w-1)/2, col)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// text draws s with its left end at x and its baseline at y.
func (c canvas) text(x, y int, s string, col color.RGBA) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int { return 7 * len([]rune(s)) }

// logAxis maps values in [lo, hi] to pixels [bottom, top] on a log scale
// and draws decade grid lines with labels.
type logAxis struct {
	lo, hi      float64
	top, bottom int
}

func (a logAxis) y(v float64) int {
	v = math.Max(a.lo, math.Min(a.hi, v))
	f := (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	return a.bottom - int(f*float64(a.bottom-a.top))
}

func (a logAxis) grid(c canvas, x0, x1 int, label func(float64) string) {
	for e := math.Floor(math.Log10(a.lo)); e <= math.Log10(a.hi)+1e-9; e++ {
		v := math.Pow(10, e)
		if v < a.lo*0.999 {
			continue
		}
		y := a.y(v)
		c.line(x0, y, x1, y, 1, grey)
		s := label(v)
		c.text(x0-textWidth(s)-4, y+4, s, black)
	}
	c.line(x0, a.top, x0, a.bottom, 1, black)
	c.line(x0, a.bottom, x1, a.bottom, 1, black)
}

func decadeRange(vals []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return 0.01, 10
	}
	return math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)+1e-9))
}

func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%gms", v)
	default:
		return fmt.Sprintf("%gus", v*1000)
	}
}

// fmtLatency is a bar's label: three significant digits.
func fmtLatency(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 1:
		return strconv.FormatFloat(ms, 'f', max(0, 2-int(math.Floor(math.Log10(ms)))), 64) + " ms"
	default:
		return fmt.Sprintf("%.0f us", ms*1000)
	}
}

func fmtMB(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gGB", v/1000)
	}
	if v >= 1 {
		return fmt.Sprintf("%gMB", v)
	}
	return fmt.Sprintf("%gkB", v*1000)
}

// plot draws restart latency per supervisor (left) and PSS per service
// count (right).
func plot(r *results, path string) error {
	const W, H = 1100, 480
	c := canvas{image.NewRGBA(image.Rect(0, 0, W, H))}
	c.rect(0, 0, W-1, H-1, white)

	// left panel: median crash-to-new-process, bars
	type bar struct {
		sup string
		v   float64
	}
	var bars []bar
	var vals []float64
	for _, s := range allSups {
		if v, ok := r.med("restart", s, "crash_to_fork_ms"); ok && v > 0 {
			bars = append(bars, bar{s, v})
			vals = append(vals, v)
		}
	}
	lx0, lx1, top, bottom := 80, 500, 50, 400
	c.text(lx0, 25, "Restart: median crash -> new process (log scale)", black)
	lo, hi := decadeRange(vals)
	ay := logAxis{lo: lo, hi: hi, top: top, bottom: bottom}
	ay.grid(c, lx0, lx1, fmtMS)
	if len(bars) > 0 {
		slot := (lx1 - lx0) / len(bars)
		for i, br := range bars {
			x := lx0 + i*slot + slot/5
			c.rect(x, ay.y(br.v), x+slot*3/5, bottom-1, palette[br.sup])
			lbl := fmtLatency(br.v)
			c.text(x+slot*3/10-textWidth(lbl)/2, ay.y(br.v)-4, lbl, black)
			c.text(x+slot*3/10-textWidth(br.sup)/2, bottom+16, br.sup, black)
		}
	}

	// right panel: PSS per service count, lines
	counts := []int{1, 10, 100, 1000}
	rx0, rx1 := 640, 960
	c.text(rx0, 25, "Idle memory: PSS of the supervisor (log scale)", black)
	vals = vals[:0]
	series := map[string][]float64{}
	for _, s := range allSups {
		for _, n := range counts {
			v, ok := r.med("idle", s, fmt.Sprintf("pss_kb.n%d", n))
			if !ok {
				v = -1
			} else {
				v /= 1000
				vals = append(vals, v)
			}
			series[s] = append(series[s], v)
		}
	}
	lo, hi = decadeRange(vals)
	ay = logAxis{lo: lo, hi: hi, top: top, bottom: bottom}
	ay.grid(c, rx0, rx1, fmtMB)
	xs := make([]int, len(counts))
	for i, n := range counts {
		xs[i] = rx0 + 20 + i*(rx1-rx0-40)/(len(counts)-1)
		lbl := fmt.Sprint(n)
		c.text(xs[i]-textWidth(lbl)/2, bottom+16, lbl, black)
	}
	c.text((rx0+rx1)/2-textWidth("services")/2, bottom+32, "services", black)
	ly := top
	for _, s := range allSups {
		pts := series[s]
		any := false
		for i := range pts {
			if pts[i] <= 0 {
				continue
			}
			any = true
			c.rect(xs[i]-3, ay.y(pts[i])-3, xs[i]+3, ay.y(pts[i])+3, palette[s])
			if i > 0 && pts[i-1] > 0 {
				c.line(xs[i-1], ay.y(pts[i-1]), xs[i], ay.y(pts[i]), 3, palette[s])
			}
		}
		if any {
			c.rect(rx1+20, ly, rx1+34, ly+10, palette[s])
			c.text(rx1+40, ly+10, s, black)
			ly += 20
		}
	}
	c.text(20, H-15, "Medians of one run on a shared 2-core VM; see docs/benchmarks.md.", black)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

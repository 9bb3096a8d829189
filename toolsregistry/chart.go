package toolsregistry

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"
	"strings"
)

// The chart renderer draws with the standard library only: a white canvas,
// light grid lines at "nice" steps labelled with a built-in 3×5 bitmap font
// (digits, sign, point and exponent: no font files), the axes, and bars or
// a line with dots. Category labels and the title are not drawn; they go
// into the image's text alternative.

var (
	chartBackground = color.RGBA{0xff, 0xff, 0xff, 0xff}
	chartGrid       = color.RGBA{0xe4, 0xe7, 0xeb, 0xff}
	chartAxis       = color.RGBA{0x37, 0x41, 0x51, 0xff}
	chartText       = color.RGBA{0x4b, 0x55, 0x63, 0xff}
	chartBar        = color.RGBA{0x25, 0x63, 0xeb, 0xff}
	chartNegative   = color.RGBA{0xdc, 0x26, 0x26, 0xff}
	chartLine       = color.RGBA{0x05, 0x96, 0x69, 0xff}
)

// renderChart draws values as a bar or line chart of w×h pixels and
// returns the PNG.
func renderChart(kind string, values []float64, w, h int) ([]byte, error) {
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("toolsregistry: chart values must be finite")
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{chartBackground}, image.Point{}, draw.Src)

	lo, hi := 0.0, 0.0
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if lo == hi {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	decimals := max(0, -int(math.Floor(math.Log10(step))))

	// Plot area: room on the left for the tick labels.
	scale := 2
	if h < 200 || w < 200 {
		scale = 1
	}
	labelWidth := 0
	var ticks []float64
	for t := lo; t <= hi+step/2; t += step {
		ticks = append(ticks, t)
		labelWidth = max(labelWidth, textWidth(tickLabel(t, decimals), scale))
	}
	plot := image.Rect(labelWidth+8*scale, 6*scale+4, w-10, h-8*scale)
	y := func(v float64) int {
		return plot.Max.Y - int(math.Round((v-lo)/(hi-lo)*float64(plot.Dy())))
	}
	for _, t := range ticks {
		ty := y(t)
		fillRect(img, image.Rect(plot.Min.X, ty, plot.Max.X, ty+1), chartGrid)
		label := tickLabel(t, decimals)
		drawText(img, plot.Min.X-4*scale-textWidth(label, scale), ty-5*scale/2, label, scale, chartText)
	}

	n := len(values)
	slot := float64(plot.Dx()) / float64(n)
	zero := y(0)
	switch kind {
	case "line":
		var prev image.Point
		for i, v := range values {
			p := image.Pt(plot.Min.X+int(slot*(float64(i)+0.5)), y(v))
			if i > 0 {
				drawLine(img, prev, p, 2, chartLine)
			}
			prev = p
		}
		for i, v := range values {
			fillCircle(img, image.Pt(plot.Min.X+int(slot*(float64(i)+0.5)), y(v)), 3, chartLine)
		}
	default:
		gap := max(1, int(slot*0.2))
		for i, v := range values {
			x0 := plot.Min.X + int(slot*float64(i)) + gap/2
			x1 := plot.Min.X + int(slot*float64(i+1)) - gap/2
			if x1 <= x0 {
				x1 = x0 + 1
			}
			top, bottom, c := y(v), zero, chartBar
			if v < 0 {
				top, bottom, c = zero, y(v), chartNegative
			}
			fillRect(img, image.Rect(x0, top, x1, max(bottom, top+1)), c)
		}
	}
	// Axes: the value axis on the left, the category axis at zero.
	fillRect(img, image.Rect(plot.Min.X-1, plot.Min.Y, plot.Min.X+1, plot.Max.Y+1), chartAxis)
	fillRect(img, image.Rect(plot.Min.X-1, zero, plot.Max.X, zero+2), chartAxis)
	for i := 0; i <= n && n <= 60; i++ {
		x := plot.Min.X + int(slot*float64(i))
		fillRect(img, image.Rect(x, zero, x+1, zero+3*scale), chartAxis)
	}

	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64, decimals int) string {
	if math.Abs(v) < 1e-12 {
		v = 0
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if len(s) > 8 {
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	return s
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

func fillCircle(img *image.RGBA, at image.Point, r int, c color.RGBA) {
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if dx*dx+dy*dy <= r*r {
				setPixel(img, at.X+dx, at.Y+dy, c)
			}
		}
	}
}

// drawLine draws from a to b with Bresenham's algorithm and a square brush
// of the given thickness.
func drawLine(img *image.RGBA, a, b image.Point, thick int, c color.RGBA) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := sign(b.X-a.X), sign(b.Y-a.Y)
	e := dx + dy
	for x, y := a.X, a.Y; ; {
		for i := 0; i < thick; i++ {
			for j := 0; j < thick; j++ {
				setPixel(img, x+i-thick/2, y+j-thick/2, c)
			}
		}
		if x == b.X && y == b.Y {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x += sx
		} else {
			e += dx
			y += sy
		}
	}
}

func setPixel(img *image.RGBA, x, y int, c color.RGBA) {
	if image.Pt(x, y).In(img.Bounds()) {
		img.SetRGBA(x, y, c)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// glyphs is a 3×5 bitmap font: each glyph is five rows of three bits, the
// high bit on the left.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 3, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 2, 2, 2},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '-': {0, 0, 7, 0, 0}, '+': {0, 2, 7, 2, 0},
	'.': {0, 0, 0, 0, 2}, 'e': {0, 7, 7, 4, 7},
}

func textWidth(s string, scale int) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return (4*n - 1) * scale
}

// drawText draws s with its top-left corner at (x, y), each font pixel a
// scale×scale square. Characters without a glyph are skipped.
func drawText(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for _, r := range strings.ToLower(s) {
		g, ok := glyphs[r]
		if ok {
			for row := 0; row < 5; row++ {
				for col := 0; col < 3; col++ {
					if g[row]&(4>>col) != 0 {
						fillRect(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
					}
				}
			}
		}
		x += 4 * scale
	}
}

package report

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// HistogramSVG writes a histogram of every series' samples (one bar
// outline per series, shared bins: about 60 between 0 and the largest
// sample), with xlabel under the axis; the y axis counts samples per bin.
func HistogramSVG(w io.Writer, title, xlabel string, series []Series) error {
	const (
		width, height          = 760, 420
		left, right, top, bott = 70, 170, 40, 50
		bins                   = 60
	)
	xmax := 0.0
	for _, s := range series {
		for _, v := range s.Samples {
			xmax = math.Max(xmax, v)
		}
	}
	if xmax <= 0 {
		return fmt.Errorf("no samples to plot")
	}
	xmax = niceCeil(xmax)
	bw := xmax / bins
	counts := make([][]int, len(series))
	ymax := 0
	for i, s := range series {
		counts[i] = make([]int, bins)
		for _, v := range s.Samples {
			b := min(max(int(v/bw), 0), bins-1)
			counts[i][b]++
			ymax = max(ymax, counts[i][b])
		}
	}
	yTop := niceCeil(float64(ymax) * 1.05)
	pw, ph := float64(width-left-right), float64(height-top-bott)
	x := func(v float64) float64 { return float64(left) + pw*v/xmax }
	y := func(v float64) float64 { return float64(top) + ph*(1-v/yTop) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", left, escape(title))
	for i := 0; i <= 5; i++ {
		xv, yv := xmax*float64(i)/5, yTop*float64(i)/5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(xv), top, x(xv), height-bott)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", x(xv), height-bott+16, xv)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(yv), width-right, y(yv))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left-6, y(yv)+4, yv)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s (bins of %.3g)</text>`+"\n", left+int(pw/2), height-12, escape(xlabel), bw)
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">sessions per bin</text>`+"\n", top+int(ph/2))
	for i, s := range series {
		color := palette[i%len(palette)]
		var pts []string
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(0), y(0)))
		for j, c := range counts[i] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(float64(j)*bw), y(float64(c)), x(float64(j+1)*bw), y(float64(c))))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(xmax), y(0)))
		fmt.Fprintf(&b, `<polyline fill="%s" fill-opacity="0.15" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, color, strings.Join(pts, " "))
		ly := top + 10 + 20*i
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="24" height="10" fill="%s" fill-opacity="0.4" stroke="%s"/>`+"\n", width-right+10, ly-5, color, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (%d)</text>`+"\n", width-right+40, ly+4, escape(s.Name), len(s.Samples))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

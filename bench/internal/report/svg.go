package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/tetherhq/tether/bench/internal/scenario"
)

// Series is one latency distribution to plot.
type Series struct {
	Name    string
	Samples []float64 // µs, any order
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// LatencySVG writes a latency-by-percentile plot (HdrHistogram style: the
// x axis stretches the tail, 0 → 90 → 99 → 99.9 %) of series, up to the
// largest p99.9 among them.
func LatencySVG(w io.Writer, title string, series []Series) error {
	const (
		width, height          = 760, 420
		left, right, top, bott = 70, 190, 40, 50
		maxX                   = 3.0 // log10(1/(1-0.999))
	)
	pw, ph := float64(width-left-right), float64(height-top-bott)
	sorted := make([][]float64, len(series))
	ymax := 0.0
	for i, s := range series {
		sorted[i] = slices.Clone(s.Samples)
		slices.Sort(sorted[i])
		if n := len(sorted[i]); n > 0 {
			ymax = math.Max(ymax, quantile(sorted[i], 0.999))
		}
	}
	if ymax <= 0 {
		return fmt.Errorf("no samples to plot")
	}
	ymax = niceCeil(ymax * 1.05)
	x := func(q float64) float64 { return float64(left) + pw*math.Min(-math.Log10(1-q), maxX)/maxX }
	y := func(v float64) float64 { return float64(top) + ph*(1-math.Min(v, ymax)/ymax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", left, escape(title))
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(q), top, x(q), height-bott)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(q), height-bott+16, strings.TrimSuffix(fmt.Sprintf("%g", q*100), ".0")+"%")
	}
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), width-right, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", left+int(pw/2), height-12)
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">round trip, µs</text>`+"\n", top+int(ph/2))
	for i, s := range sorted {
		if len(s) == 0 {
			continue
		}
		color := palette[i%len(palette)]
		dash := ""
		if i/len(palette)%2 == 1 || strings.Contains(series[i].Name, "unpinned") {
			dash = ` stroke-dasharray="6 3"`
		}
		var pts []string
		for j := 0; j <= 300; j++ {
			q := 1 - math.Pow(10, -maxX*float64(j)/300)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(q), y(quantile(s, q))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		ly := top + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right+10, ly, width-right+34, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (p50 %.0f)</text>`+"\n", width-right+40, ly+4, escape(series[i].Name), quantile(s, 0.5))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func quantile(sorted []float64, q float64) float64 { return scenario.Percentile(sorted, q) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

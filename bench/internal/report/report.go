// Package report turns results into medians with min–max, ratios against
// the raw twin, Markdown tables and SVG plots.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/tetherhq/tether/bench/internal/scenario"
)

// Baseline is the system every other system is compared with.
const Baseline = "raw"

// Agg is one metric of one system over the runs.
type Agg struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// Row is one metric of one case, for every system.
type Row struct {
	Case    string         `json:"case"`
	Pinned  bool           `json:"pinned"`
	Metric  string         `json:"metric"`
	Systems map[string]Agg `json:"systems"`
	// Ratios are median(system) / median(the baseline), per other system.
	Ratios map[string]float64 `json:"ratios"`
}

// Summarize groups results by case, pinning and metric, in the order the
// cases were run, keeping only metrics, with ratios against Baseline.
func Summarize(results []*scenario.Result, metrics []string) []Row {
	return SummarizeAgainst(results, metrics, Baseline)
}

// SummarizeAgainst is Summarize with ratios against baseline (a system, or
// whatever the results' System names: the multi-node scenarios name the
// broker there).
func SummarizeAgainst(results []*scenario.Result, metrics []string, baseline string) []Row {
	type key struct {
		c      string
		pinned bool
		metric string
	}
	var order []key
	vals := map[key]map[string][]float64{}
	for _, r := range results {
		for _, m := range metrics {
			v, ok := r.Metrics[m]
			if !ok || math.IsNaN(v) {
				continue
			}
			k := key{r.Spec.Case, r.Pinned, m}
			if vals[k] == nil {
				vals[k] = map[string][]float64{}
				order = append(order, k)
			}
			vals[k][r.System] = append(vals[k][r.System], v)
		}
	}
	// Metrics of a case stay together, in the order asked for.
	slices.SortStableFunc(order, func(a, b key) int {
		if a.c != b.c || a.pinned != b.pinned {
			return 0
		}
		return slices.Index(metrics, a.metric) - slices.Index(metrics, b.metric)
	})
	rows := make([]Row, 0, len(order))
	for _, k := range order {
		row := Row{Case: k.c, Pinned: k.pinned, Metric: k.metric, Systems: map[string]Agg{}, Ratios: map[string]float64{}}
		for sys, vs := range vals[k] {
			row.Systems[sys] = aggregate(vs)
		}
		if base, ok := row.Systems[baseline]; ok && base.Median != 0 {
			for sys, a := range row.Systems {
				if sys != baseline {
					row.Ratios[sys] = a.Median / base.Median
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func aggregate(vs []float64) Agg {
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Agg{Median: med, Min: s[0], Max: s[len(s)-1], Runs: len(s)}
}

// Labels name the metrics in tables.
var Labels = map[string]string{
	scenario.MetricRate:       "msg/s",
	scenario.MetricCPUPerMsg:  "server CPU µs/msg",
	scenario.MetricCPUPerOp:   "server CPU µs/op",
	scenario.MetricCores:      "server cores",
	scenario.MetricP50:        "p50 µs",
	scenario.MetricP99:        "p99 µs",
	scenario.MetricP999:       "p99.9 µs",
	scenario.MetricRTPerSec:   "round trips/s",
	scenario.MetricSamples:    "samples",
	scenario.MetricGoroutines: "server goroutines",
	scenario.MetricHeapStack:  "server heap+stack",
	scenario.MetricRSS:        "server RSS",
}

// Markdown writes rows as a table: a column per system (median and
// min–max) and a ratio column per system but Baseline.
func Markdown(w io.Writer, rows []Row, systems []string) {
	MarkdownAgainst(w, rows, systems, Baseline)
}

// MarkdownAgainst is Markdown with ratio columns against baseline (rows
// from SummarizeAgainst with the same baseline).
func MarkdownAgainst(w io.Writer, rows []Row, systems []string, baseline string) {
	others := slices.DeleteFunc(slices.Clone(systems), func(s string) bool { return s == baseline })
	hasBase := slices.Contains(systems, baseline)
	fmt.Fprint(w, "| case | metric |")
	for _, s := range systems {
		fmt.Fprintf(w, " %s |", s)
	}
	if hasBase {
		for _, s := range others {
			fmt.Fprintf(w, " %s ÷ %s |", s, baseline)
		}
	}
	ph, pa := peerHeader(systems)
	fmt.Fprint(w, ph)
	fmt.Fprint(w, "\n|---|---|"+strings.Repeat("--:|", len(systems)))
	if hasBase {
		fmt.Fprint(w, strings.Repeat("--:|", len(others)))
	}
	fmt.Fprintln(w, pa)
	for _, r := range rows {
		c := r.Case
		if r.Pinned {
			c += ", pinned"
		}
		fmt.Fprintf(w, "| %s | %s |", c, label(r.Metric))
		for _, s := range systems {
			a, ok := r.Systems[s]
			if !ok {
				fmt.Fprint(w, " – |")
				continue
			}
			if a.Runs > 1 {
				fmt.Fprintf(w, " %s (%s–%s) |", format(r.Metric, a.Median), format(r.Metric, a.Min), format(r.Metric, a.Max))
			} else {
				fmt.Fprintf(w, " %s |", format(r.Metric, a.Median))
			}
		}
		if hasBase {
			for _, s := range others {
				if ratio, ok := r.Ratios[s]; ok {
					fmt.Fprintf(w, " %.2f× |", ratio)
				} else {
					fmt.Fprint(w, " – |")
				}
			}
		}
		peerCell(w, r, systems)
		fmt.Fprintln(w)
	}
}

func label(m string) string {
	if l, ok := Labels[m]; ok {
		return l
	}
	return m
}

// Metrics printed as rates (k or M), byte sizes (MiB) and whole counts;
// a scenario adds its own.
var (
	Rates  = []string{scenario.MetricRate, scenario.MetricRTPerSec}
	Bytes  = []string{scenario.MetricHeapStack, scenario.MetricRSS}
	Counts = []string{scenario.MetricSamples, scenario.MetricGoroutines, scenario.MetricLost}
)

// format prints a value for its metric: rates in k or M, bytes in KiB or
// MiB, times with three significant digits.
func format(metric string, v float64) string {
	switch {
	case slices.Contains(Rates, metric):
		if v >= 1e6 {
			return fmt.Sprintf("%.2f M", v/1e6)
		}
		return fmt.Sprintf("%.1f k", v/1e3)
	case slices.Contains(Bytes, metric):
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case slices.Contains(Counts, metric):
		return fmt.Sprintf("%.0f", v)
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

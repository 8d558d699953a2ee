package report

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/bench/internal/scenario"
)

func result(sys string, run int, rate float64) *scenario.Result {
	return &scenario.Result{
		Spec:    scenario.Spec{Scenario: "push", Case: "s2c 1×64 B"},
		System:  sys,
		Run:     run,
		Metrics: map[string]float64{scenario.MetricRate: rate},
	}
}

func TestSummarizeMedianRangeRatio(t *testing.T) {
	var rs []*scenario.Result
	for i, v := range []float64{300, 100, 200} {
		rs = append(rs, result("tether", i, v), result("raw", i, 2*v))
	}
	rows := Summarize(rs, []string{scenario.MetricRate})
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	got := rows[0].Systems["tether"]
	if got != (Agg{Median: 200, Min: 100, Max: 300, Runs: 3}) {
		t.Errorf("tether: %+v", got)
	}
	if r := rows[0].Ratios["tether"]; r != 0.5 {
		t.Errorf("ratio %v, want 0.5", r)
	}
	var b strings.Builder
	Markdown(&b, rows, []string{"tether", "raw"})
	for _, want := range []string{"| tether ÷ raw |", "| s2c 1×64 B | msg/s | 0.2 k (0.1 k–0.3 k) | 0.4 k (0.2 k–0.6 k) | 0.50× |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSummarizeAgainstOtherBaseline(t *testing.T) {
	rs := []*scenario.Result{result("memory", 1, 1000), result("nats", 1, 250), result("nats-r3", 1, 100)}
	rows := SummarizeAgainst(rs, []string{scenario.MetricRate}, "memory")
	if len(rows) != 1 || rows[0].Ratios["nats"] != 0.25 || rows[0].Ratios["nats-r3"] != 0.1 {
		t.Fatalf("rows %+v; want ratios 0.25 and 0.1 against memory", rows)
	}
	var b strings.Builder
	MarkdownAgainst(&b, rows, []string{"memory", "nats", "nats-r3"}, "memory")
	for _, want := range []string{"| nats ÷ memory | nats-r3 ÷ memory |", "| s2c 1×64 B | msg/s | 1.0 k | 0.2 k | 0.1 k | 0.25× | 0.10× |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestLatencySVG(t *testing.T) {
	var b strings.Builder
	err := LatencySVG(&b, "t", []Series{{Name: "a", Samples: []float64{1, 2, 3, 40}}, {Name: "b, unpinned", Samples: []float64{5}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<polyline"); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	if err := LatencySVG(&b, "t", nil); err == nil {
		t.Error("no error without samples")
	}
}

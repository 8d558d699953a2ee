package report

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/bench/internal/scenario"
)

func TestPeerColumn(t *testing.T) {
	var results []*scenario.Result
	for sys, v := range map[string]float64{"tether": 300, "raw": 400, "centrifuge": 200} {
		results = append(results, &scenario.Result{System: sys, Spec: scenario.Spec{Case: "c"}, Metrics: map[string]float64{scenario.MetricRate: v}})
	}
	var b strings.Builder
	Markdown(&b, Summarize(results, []string{scenario.MetricRate}), []string{"tether", "raw", "centrifuge"})
	out := b.String()
	for _, want := range []string{
		"| case | metric | tether | raw | centrifuge | tether ÷ raw | centrifuge ÷ raw | tether ÷ centrifuge |\n",
		"|---|---|--:|--:|--:|--:|--:|--:|\n",
		"| 0.75× | 0.50× | 1.50× |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	Markdown(&b, Summarize(results, []string{scenario.MetricRate}), []string{"tether", "raw"})
	if strings.Contains(b.String(), "centrifuge") || !strings.Contains(b.String(), "|---|---|--:|--:|--:|\n") {
		t.Errorf("a table without centrifuge has its column:\n%s", b.String())
	}
}

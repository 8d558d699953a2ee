package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// peerSmoke runs a scenario against systems and checks that every case of
// every system produced metric, and that the table has cols.
func peerSmoke(t *testing.T, systems string, cols []string, metric string, want int, args ...string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr strings.Builder
	args = append(args, "--systems", systems, "--runs", "1", "--json", jsonPath)
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("tether-bench %v: exit %d\n%s", args, code, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Results) != want {
		t.Fatalf("%d results, want %d", len(d.Results), want)
	}
	for _, r := range d.Results {
		if r.Metrics[metric] <= 0 {
			t.Errorf("%s %s on %s: %s = %v", r.Spec.Scenario, r.Spec.Case, r.System, metric, r.Metrics[metric])
		}
	}
	for _, col := range cols {
		if !strings.Contains(stdout.String(), col) {
			t.Errorf("no %q column in the table:\n%s", col, stdout.String())
		}
	}
}

func TestFanoutSmoke(t *testing.T) {
	t.Parallel()
	// 1 subscriber count × 3 systems.
	peerSmoke(t, "tether,raw,centrifuge", []string{"| tether ÷ raw |", "| centrifuge ÷ raw |", "| tether ÷ centrifuge |"},
		"msgs_per_s", 3, "fanout", "--subscribers", "20", "--deliveries", "400", "--warmup-deliveries", "40")
}

func TestCentrifugePushSmoke(t *testing.T) {
	t.Parallel()
	// Centrifuge alone (tether and raw have their own smoke tests; the
	// tether ÷ centrifuge column is checked by the fan-out smoke and the
	// report's tests): 2 directions.
	peerSmoke(t, "centrifuge", []string{"| centrifuge |"}, "msgs_per_s", 2, "push", "--sessions", "1", "--sizes", "64", "--duration", "150ms", "--warmup", "50ms")
}

func TestCentrifugeLatencySmoke(t *testing.T) {
	t.Parallel()
	// Centrifuge alone: unpinned round trip and heartbeat.
	peerSmoke(t, "centrifuge", []string{"| centrifuge |"}, "p50_us", 2, "latency", "--pin", "off", "--count", "200", "--warmup-count", "20", "--hb-sessions", "2", "--hb-duration", "1500ms")
}

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChaosSmoke runs tether-bench chaos at its smallest: one fault on the
// memory broker, two sessions, and checks that the JSON holds the counts
// and the table their columns. The chaos suite's own tests (test/chaos)
// check the promises; this checks the scenario's plumbing.
func TestChaosSmoke(t *testing.T) {
	t.Parallel()
	jsonPath := filepath.Join(t.TempDir(), "chaos.json")
	var stdout, stderr strings.Builder
	args := []string{"chaos", "--cases", "reset-pulses", "--brokers", "memory", "--sessions", "2", "--rate", "40",
		"--warmup", "300ms", "--after", "300ms", "--pulses", "1", "--pulse-on", "100ms", "--settle", "20s", "--json", jsonPath}
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("tether-bench %v: exit %d\n%s", args, code, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Results []struct {
			Case string `json:"case"`
			S2C  struct {
				Sent int `json:"sent"`
			} `json:"s2c"`
			C2S struct {
				Sent int `json:"sent"`
			} `json:"c2s"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Results) != 1 || d.Results[0].Case != "reset-pulses/memory" || d.Results[0].S2C.Sent == 0 || d.Results[0].C2S.Sent == 0 {
		t.Fatalf("results %+v; want one reset-pulses/memory result with messages sent both ways", d.Results)
	}
	for _, col := range []string{"| fault |", "s→c lost (unreported)", "c→s reordered", "reconnect p50 / max"} {
		if !strings.Contains(stdout.String(), col) {
			t.Errorf("no %q in the table:\n%s", col, stdout.String())
		}
	}
}

func TestChaosFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"chaos", "--cases", "nope"},
		{"chaos", "--brokers", "redis"},
		{"chaos", "--cases", "nats-down", "--brokers", "memory"},
		{"chaos", "--sessions", "0"},
	} {
		var stdout, stderr strings.Builder
		if code := Main(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "--") {
			t.Errorf("tether-bench %v: exit %d, stderr %q; want 1 and a message naming the flag", args, code, stderr.String())
		}
	}
}

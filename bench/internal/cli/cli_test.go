package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary be the server and driver processes: the
// orchestrator re-executes os.Executable() with "serve" or "drive".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "drive") {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// doc is the part of the JSON output the smoke tests check.
type doc struct {
	Results []struct {
		System  string             `json:"system"`
		Metrics map[string]float64 `json:"metrics"`
		Spec    struct {
			Scenario string `json:"scenario"`
			Case     string `json:"case"`
		} `json:"spec"`
	} `json:"results"`
}

// smoke runs a scenario with the smallest sizes against both systems and
// checks that every case of every system produced metric.
func smoke(t *testing.T, metric string, want int, args ...string) {
	t.Helper()
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "out.json")
	var stdout, stderr strings.Builder
	args = append(args, "--runs", "1", "--json", jsonPath)
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
	if !strings.Contains(stdout.String(), "| tether ÷ raw |") {
		t.Errorf("no ratio column in the table:\n%s", stdout.String())
	}
}

func TestPushSmoke(t *testing.T) {
	t.Parallel()
	// 2 directions × 2 session counts × 1 size × 2 systems.
	smoke(t, "msgs_per_s", 8, "push", "--sessions", "1,2", "--sizes", "64", "--duration", "150ms", "--warmup", "50ms")
}

func TestLatencySmoke(t *testing.T) {
	t.Parallel()
	// (unpinned, pinned, heartbeat) × 2 systems.
	svg := filepath.Join(t.TempDir(), "l.svg")
	smoke(t, "p50_us", 6, "latency", "--count", "200", "--warmup-count", "20", "--hb-sessions", "2", "--hb-duration", "1s", "--svg", svg)
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("no plot in %s: %v", svg, err)
	}
}

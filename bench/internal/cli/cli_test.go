package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary be the server, driver and x* processes:
// the orchestrator re-executes os.Executable() with "serve", "drive",
// "xserve" or "xclient".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "drive" || hiddenExt[os.Args[1]]) {
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

// ratioCol is the tether ÷ raw column of a table.
const ratioCol = "| tether ÷ raw |"

// smoke runs tether-bench with args, one run of each case, and checks
// that it produced want results, each with every metric positive ("a|b":
// either), and that the table has every column of cols; it returns the
// JSON output.
func smoke(t *testing.T, want int, metrics, cols []string, args ...string) doc {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "out.json")
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
	metric:
		for _, m := range metrics {
			for _, alt := range strings.Split(m, "|") {
				if r.Metrics[alt] > 0 {
					continue metric
				}
			}
			t.Errorf("%s %s on %s: %s missing or not positive: %v", r.Spec.Scenario, r.Spec.Case, r.System, m, r.Metrics)
		}
	}
	for _, col := range cols {
		if !strings.Contains(stdout.String(), col) {
			t.Errorf("no %q column in the table:\n%s", col, stdout.String())
		}
	}
	return d
}

func TestPushSmoke(t *testing.T) {
	t.Parallel()
	// 2 directions × 2 session counts × 1 size × 2 systems.
	d := smoke(t, 8, nil, []string{ratioCol}, "push", "--sessions", "1,2", "--sizes", "64", "--duration", "150ms", "--warmup", "50ms")
	for _, r := range d.Results {
		// tether's s2c runs on its defaults, without an app-level
		// window: before issue 15's flow control a session pushed flat
		// out is cut as a slow consumer and may receive nothing in a
		// 150 ms window (the relay and flow scenarios measure that).
		if r.System == "tether" && strings.HasPrefix(r.Spec.Case, "s2c") {
			if _, ok := r.Metrics["msgs_per_s"]; !ok {
				t.Errorf("%s on tether: no rate: %v", r.Spec.Case, r.Metrics)
			}
			continue
		}
		if r.Metrics["msgs_per_s"] <= 0 {
			t.Errorf("%s on %s: msgs_per_s missing or not positive: %v", r.Spec.Case, r.System, r.Metrics)
		}
	}
}

func TestLatencySmoke(t *testing.T) {
	t.Parallel()
	// (unpinned, pinned, heartbeat) × 2 systems.
	svg := filepath.Join(t.TempDir(), "l.svg")
	smoke(t, 6, []string{"p50_us"}, []string{ratioCol}, "latency", "--count", "200", "--warmup-count", "20", "--hb-sessions", "2", "--hb-duration", "1s", "--svg", svg)
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("no plot in %s: %v", svg, err)
	}
}

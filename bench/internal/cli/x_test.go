package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// init lets the test binary be the xserve and xclient processes too (the
// package's TestMain handles serve and drive); it runs before TestMain.
func init() {
	if len(os.Args) > 1 && hiddenExt[os.Args[1]] {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
}

func TestIdleSmoke(t *testing.T) {
	t.Parallel()
	// (conns, mux) × 2 systems: 4 sessions each, 1s heartbeat, 1s window.
	xsmoke(t, []string{"server_kb_per_session", "server_cores"}, 4, true, "idle", "--conn-sessions", "4", "--per-process", "2",
		"--mux-sessions", "6", "--mux-conns", "2", "--heartbeat", "300ms", "--window", "500ms", "--settle", "100ms")
}

func TestResumeSmoke(t *testing.T) {
	t.Parallel()
	// 20 pending × (default, fast backoff) + mass, × 2 systems.
	svg := filepath.Join(t.TempDir(), "mass.svg")
	xsmoke(t, []string{"resume_p50_ms|sessions_per_s"}, 6, true, "resume", "--pending", "20", "--count", "1", "--mass", "4", "--per-process", "2", "--svg", svg)
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("no plot in %s: %v", svg, err)
	}
}

func TestDetectionSmoke(t *testing.T) {
	t.Parallel()
	// Both faults × datacenter × both systems take ~45 s (raw's keepalive
	// bound is 15 s, tether's 6.5 s): a frozen tether peer only.
	xsmoke(t, []string{"server_detect_s", "bound_s"}, 1, false, "detection", "--faults", "frozen", "--systems", "tether", "--settle", "100ms")
}

// xsmoke is smoke for the scenarios of this package's x*.go files: every
// result must have each metric positive ("a|b": either), and with ratio
// the table a tether ÷ raw column.
func xsmoke(t *testing.T, metrics []string, want int, ratio bool, args ...string) {
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
			t.Errorf("%s on %s: %s missing or not positive: %v", r.Spec.Case, r.System, m, r.Metrics)
		}
	}
	if ratio && !strings.Contains(stdout.String(), "| tether ÷ raw |") {
		t.Errorf("no ratio column in the table:\n%s", stdout.String())
	}
}

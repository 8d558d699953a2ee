package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdleSmoke(t *testing.T) {
	t.Parallel()
	// (conns, mux) × tether and raw, and conns on Centrifuge (which
	// carries one session per connection: no mux case): 4 sessions each,
	// 300ms heartbeat, 500ms window.
	smoke(t, 5, []string{"server_kb_per_session", "server_cores"}, []string{ratioCol}, "idle", "--conn-sessions", "4", "--per-process", "2",
		"--mux-sessions", "6", "--mux-conns", "2", "--heartbeat", "300ms", "--window", "500ms", "--settle", "100ms",
		"--systems", "tether,raw,centrifuge")
}

func TestResumeSmoke(t *testing.T) {
	t.Parallel()
	// (0, 20 pending) × (default, fast backoff) + mass, × 3 systems, but
	// for Centrifuge no pending case (its default channel loses them).
	svg := filepath.Join(t.TempDir(), "mass.svg")
	smoke(t, 13, []string{"resume_p50_ms|sessions_per_s"}, []string{ratioCol}, "resume", "--pending", "0,20", "--count", "1", "--mass", "4", "--per-process", "2", "--svg", svg,
		"--systems", "tether,raw,centrifuge")
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("no plot in %s: %v", svg, err)
	}
}

func TestDetectionSmoke(t *testing.T) {
	t.Parallel()
	// Both faults × datacenter × both systems take ~45 s (raw's keepalive
	// bound is 15 s, tether's 6.5 s): a frozen tether peer only.
	smoke(t, 1, []string{"server_detect_s", "bound_s"}, nil, "detection", "--faults", "frozen", "--systems", "tether", "--settle", "100ms")
}

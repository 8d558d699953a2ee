package cli

import (
	"strings"
	"testing"
)

func TestRelaySmoke(t *testing.T) {
	t.Parallel()
	// memory × tether and raw, nats and nats-core × tether.
	d := smoke(t, 4, []string{"wall_s", "msgs_per_s", "delivered"}, []string{ratioCol, "| wall s |"},
		"relay", "--count", "500", "--brokers", "memory,nats,nats-core", "--settle", "2s")
	rawDelivers(t, d, 500)
}

func TestFlowSmoke(t *testing.T) {
	t.Parallel()
	// (keep, slow) × (memory × tether and raw, nats × tether).
	d := smoke(t, 6, []string{"delivered", "free_rate", "server_rss_max"}, []string{ratioCol, "| lost msgs |", "Per second"},
		"flow", "--warmup", "500ms", "--duration", "1s", "--settle", "2s")
	rawDelivers(t, d, 0)
}

func TestSendWaitSmoke(t *testing.T) {
	t.Parallel()
	smoke(t, 2, []string{"p50_us", "p99_us"}, []string{ratioCol}, "sendwait", "--count", "50", "--warmup-count", "5", "--interval", "1ms")
}

func TestFlowFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"flow", "--consumers", "fast"},
		{"flow", "--brokers", "redis"},
		{"relay", "--brokers", "redis"},
	} {
		var stdout, stderr strings.Builder
		if code := Main(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "unknown") {
			t.Errorf("tether-bench %v: exit %d, stderr %q; want 1 and the unknown value named", args, code, stderr.String())
		}
	}
}

// rawDelivers checks the raw twin's results: every message the
// producer's Send accepted arrived once, in order (want delivered, when
// positive).
func rawDelivers(t *testing.T, d doc, want float64) {
	t.Helper()
	for _, r := range d.Results {
		if r.System != "raw" {
			continue
		}
		m := r.Metrics
		if m["lost"] != 0 || m["duplicated"] != 0 || m["reordered"] != 0 || (want > 0 && m["delivered"] != want) {
			t.Errorf("raw %s: %v; want every message once, in order", r.Spec.Case, m)
		}
	}
}

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nodesCols are the columns of a nodes table on every broker.
var nodesCols = []string{"| memory | nats | nats-r3 | nats ÷ memory | nats-r3 ÷ memory |"}

// nodesSmoke runs tether-bench nodes at its smallest on every broker (one
// memory node; three nodes on one NATS server; three on a three-server
// cluster, replicas 3).
func nodesSmoke(t *testing.T, want int, metrics []string, args ...string) doc {
	t.Helper()
	return smoke(t, want, metrics, nodesCols, append([]string{"nodes", "--brokers", "memory,nats,nats-r3"}, args...)...)
}

func TestNodesPushSmoke(t *testing.T) {
	t.Parallel()
	// (same node, across nodes) on the cluster and with logs on their
	// node, the memory node once (its run stands for both rows); NATS
	// with one server is the cluster's path (the fan-out and resume smoke
	// tests run it), and each case starts its own nodes: this keeps the
	// test short.
	d := smoke(t, 6, []string{"msgs_per_s"}, []string{"| memory | nats-core | nats-r3 | nats-core ÷ memory | nats-r3 ÷ memory |"},
		"nodes", "--brokers", "memory,nats-core,nats-r3", "--cases", "push", "--count", "100")
	for _, r := range d.Results {
		if r.Metrics["delivered"] != 100 || r.Metrics["lost"] != 0 || r.Metrics["duplicated"] != 0 || r.Metrics["reordered"] != 0 {
			t.Errorf("%s on %s: %v; want 100 delivered, none lost, duplicated or reordered", r.Spec.Case, r.System, r.Metrics)
		}
	}
}

func TestNodesFanoutSmoke(t *testing.T) {
	t.Parallel()
	d := nodesSmoke(t, 3, []string{"msgs_per_s"}, "--cases", "fanout", "--subscribers", "6", "--deliveries", "60", "--warmup-deliveries", "12")
	for _, r := range d.Results {
		if r.Metrics["lost_deliveries"] != 0 {
			t.Errorf("fan-out on %s lost %v deliveries", r.System, r.Metrics["lost_deliveries"])
		}
	}
}

func TestNodesResumeSmoke(t *testing.T) {
	t.Parallel()
	// 4 sessions on the node that is killed: on NATS every one resumes
	// on another node (resumed=true); the memory node's come back fresh.
	svg := filepath.Join(t.TempDir(), "failover.svg")
	prof := t.TempDir()
	d := nodesSmoke(t, 3, []string{"sessions_per_s", "failover_p50_ms"}, "--cases", "resume", "--mass", "4", "--per-process", "2", "--svg", svg, "--cpuprofile", prof)
	for _, r := range d.Results {
		want := 4.0
		if r.System == "memory" {
			want = 0
		}
		if r.Metrics["resumed"] != want || r.Metrics["lost"] != 0 || r.Metrics["duplicated"] != 0 {
			t.Errorf("mass resume on %s: %v; want %v resumed, none lost or duplicated", r.System, r.Metrics, want)
		}
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("no plot in %s: %v", svg, err)
	}
	// --cpuprofile: the surviving nodes and the NATS servers after the kill.
	for _, b := range []string{"nats", "nats-r3"} {
		for _, who := range []string{"n2", "n3", "nats"} {
			path := filepath.Join(prof, "mass-failover-"+b+"-"+who+".pprof")
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Errorf("no CPU profile %s: %v", path, err)
			}
		}
	}
}

func TestNodesFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"nodes", "--cases", "nope"},
		{"nodes", "--brokers", "redis"},
		{"nodes", "--nodes", "1"},
		{"nodes", "--systems", "raw"},
		{"nodes", "--subscribers", "20000"},
		{"nodes", "--mass", "0"},
	} {
		var stdout, stderr strings.Builder
		if code := Main(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "--") {
			t.Errorf("tether-bench %v: exit %d, stderr %q; want 1 and a message naming the flag", args, code, stderr.String())
		}
	}
}

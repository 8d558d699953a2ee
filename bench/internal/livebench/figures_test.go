package livebench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

var update = flag.Bool("update", false, "write the figures and tables to ../../results")

// steadyHours is how long the heartbeat is counted once it settled: 6
// hours for the figures (-update), 2 for the goals' check alone.
func steadyHours() time.Duration {
	if *update {
		return 6 * time.Hour
	}
	return 2 * time.Hour
}

// natResult is one session behind a NAT.
type natResult struct {
	NATSeconds float64 `json:"nat_s"`
	Mode       string  `json:"mode"` // fixed or adaptive
	// IntervalSeconds is the heartbeat interval once settled.
	IntervalSeconds float64 `json:"interval_s"`
	// HeartbeatsPerHour counts both sides' pings (each wakes the radio,
	// with its pong) over the steady hours.
	HeartbeatsPerHour float64 `json:"heartbeats_per_hour"`
	// MinimumPerHour is the fewest that keep the mapping: 3600 / NAT.
	MinimumPerHour float64 `json:"minimum_per_hour"`
	// LearnMinutes, LearnHeartbeats and LearnDrops are the search's cost:
	// fake time, pings and NAT drops until it settled.
	LearnMinutes    float64 `json:"learn_min"`
	LearnHeartbeats int     `json:"learn_heartbeats"`
	LearnDrops      int     `json:"learn_drops"`
	// SteadyDrops are NAT drops after it settled.
	SteadyDrops int `json:"steady_drops"`
}

// detResult is one dead-peer detection.
type detResult struct {
	Profile string  `json:"profile"`
	Mode    string  `json:"mode"` // fixed or rtt
	RTTms   float64 `json:"rtt_ms"`
	// ClientSeconds is from the client's last frame received to its
	// declaring the server dead (the blackhole starts as a pong arrives);
	// ServerSeconds the server's silence before it declared the client
	// dead (tether_dead_peer_detection_seconds).
	ClientSeconds  float64 `json:"client_s"`
	ServerSeconds  float64 `json:"server_s"`
	FalsePositives int     `json:"false_positives"`
}

func TestFigures(t *testing.T) {
	var nats []natResult
	for _, nat := range []time.Duration{30 * time.Second, 60 * time.Second, 120 * time.Second, 240 * time.Second} {
		for _, adaptive := range []bool{false, true} {
			mode := map[bool]string{false: "fixed", true: "adaptive"}[adaptive]
			t.Run(fmt.Sprintf("nat %v %s", nat, mode), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { nats = append(nats, measureNAT(t, nat, adaptive)) })
			})
		}
	}
	for _, r := range nats {
		if r.Mode == "adaptive" && (r.HeartbeatsPerHour > 1.2*r.MinimumPerHour || r.SteadyDrops != 0) {
			t.Errorf("adaptive behind a %vs NAT: %.1f heartbeats/hour (minimum %.1f), %d drops once settled; want at most 1.2× and none", r.NATSeconds, r.HeartbeatsPerHour, r.MinimumPerHour, r.SteadyDrops)
		}
	}
	var dets []detResult
	for _, pn := range []string{"datacenter", "default"} {
		for _, mode := range []string{"fixed", "rtt"} {
			for _, rtt := range []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second} {
				t.Run(fmt.Sprintf("%s %s %v", pn, mode, rtt), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) { dets = append(dets, measureDetection(t, pn, mode == "rtt", rtt)) })
				})
			}
		}
	}
	for _, r := range dets {
		if r.FalsePositives != 0 {
			t.Errorf("%s %s at %vms: %d false positives", r.Profile, r.Mode, r.RTTms, r.FalsePositives)
		}
		if r.Profile == "datacenter" && r.Mode == "rtt" && r.RTTms == 0 && (r.ClientSeconds > 2 || r.ServerSeconds > 2) {
			t.Errorf("datacenter at loopback RTT: detection %vs (client), %vs (server); want at most 2s", r.ClientSeconds, r.ServerSeconds)
		}
	}
	if *update {
		write(t, nats, dets)
	}
}

// pingCounts reads the server's pings received and sent from reg.
func pingCounts(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "tether_heartbeats_sent_total":
				n += m.GetCounter().GetValue()
			case "tether_frames_received_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "type" && l.GetValue() == "ping" {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return int(n)
}

// histogramSum reads a histogram's sum and count from reg.
func histogramSum(t *testing.T, reg *prometheus.Registry, name string) (float64, uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum(), h.GetSampleCount()
		}
	}
	return 0, 0
}

// measureNAT runs the mobile profile's session behind a NAT of idle
// timeout nat, in fake time.
func measureNAT(t *testing.T, nat time.Duration, adaptive bool) natResult {
	p := profile.Mobile()
	reg := prometheus.NewRegistry()
	_, lis := tethertest.ServeBufconn(t, server.WithProfile(p), server.WithRegisterer(reg))
	n := faultproxy.NewNet(1)
	n.SetIdleTimeout(nat)
	s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(n.Dialer(tethertest.Dialer(lis)))),
		client.WithProfile(p), client.WithClientID("phone"), client.WithAdaptiveHeartbeat(adaptive))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	defer s.Close(context.Background())
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := natResult{NATSeconds: nat.Seconds(), Mode: map[bool]string{false: "fixed", true: "adaptive"}[adaptive], MinimumPerHour: float64(time.Hour) / float64(nat)}
	start := time.Now()
	if adaptive {
		for !s.Stats().HeartbeatLearned.Converged() || s.State() != client.StateConnected {
			if time.Since(start) > 12*time.Hour {
				t.Fatalf("no convergence behind a %v NAT in 12h: %+v", nat, s.Stats())
			}
			time.Sleep(10 * time.Second)
		}
	}
	time.Sleep(time.Minute) // the first interval at the settled rate
	r.LearnMinutes, r.LearnHeartbeats, r.LearnDrops = time.Since(start).Minutes(), pingCounts(t, reg), n.IdleDrops()
	steady := steadyHours()
	time.Sleep(steady)
	r.HeartbeatsPerHour = float64(pingCounts(t, reg)-r.LearnHeartbeats) / steady.Hours()
	r.SteadyDrops = n.IdleDrops() - r.LearnDrops
	r.IntervalSeconds = s.Stats().Heartbeat.Seconds()
	t.Logf("%+v", r)
	return r
}

// measureDetection blackholes a session of profile pn over a path of the
// given round trip (±10 % jitter each way) after two minutes, in fake
// time.
func measureDetection(t *testing.T, pn string, rttOn bool, rtt time.Duration) detResult {
	p, err := profile.Lookup(pn)
	if err != nil {
		t.Fatal(err)
	}
	mode := "rtt"
	if !rttOn {
		p.Heartbeat.RTTMultiplier, mode = 0, "fixed"
	}
	reg := prometheus.NewRegistry()
	_, lis := tethertest.ServeBufconn(t, server.WithProfile(p), server.WithRegisterer(reg))
	n := faultproxy.NewNet(uint64(rtt))
	n.SetDelay(rtt / 2)
	n.SetJitter(rtt / 20)
	var mu sync.Mutex
	var blackholed, lost time.Time
	var falsePositives int
	start := time.Now()
	s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(n.Dialer(tethertest.Dialer(lis)))),
		client.WithProfile(p), client.WithClientID("peer"),
		client.WithOnRTT(func(string, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if blackholed.IsZero() && time.Since(start) >= 2*time.Minute {
				n.Blackhole(true) // as the pong arrived: the client's last frame
				blackholed = time.Now()
			}
		}),
		client.WithOnState(func(c client.StateChange) {
			if c.State == client.StateReconnecting {
				mu.Lock()
				if blackholed.IsZero() {
					falsePositives++
				} else if lost.IsZero() {
					lost = c.Time
				}
				mu.Unlock()
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	defer s.Close(context.Background())
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := detResult{Profile: pn, Mode: mode, RTTms: float64(rtt) / float64(time.Millisecond)}
	for {
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		at, gone := blackholed, lost
		mu.Unlock()
		if at.IsZero() {
			continue
		}
		if !gone.IsZero() {
			r.ClientSeconds = gone.Sub(at).Seconds()
		}
		sum, count := histogramSum(t, reg, "tether_dead_peer_detection_seconds")
		if count > 0 && r.ClientSeconds > 0 {
			r.ServerSeconds = sum
			break
		}
		if time.Since(at) > 5*time.Minute {
			t.Fatalf("no detection 5m after the blackhole: %+v", r)
		}
	}
	mu.Lock()
	r.FalsePositives = falsePositives
	mu.Unlock()
	t.Logf("%+v", r)
	return r
}

// write stores the results, tables and figures under bench/results.
func write(t *testing.T, nats []natResult, dets []detResult) {
	dir := filepath.Join("..", "..", "results")
	put := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]any{"liveness-nat.json": nats, "liveness-detection.json": dets} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		put(name, append(b, '\n'))
	}

	var md strings.Builder
	md.WriteString("| NAT idle timeout | heartbeat | settled interval | heartbeats/hour | minimum/hour | ratio | to settle | heartbeats and NAT drops to settle | NAT drops in 6 h settled |\n|---|---|---|---|---|---|---|---|---|\n")
	lines := map[string]*report.Line{"fixed": {Name: "fixed (mobile, 25 s)"}, "adaptive": {Name: "adaptive (mobile)"}, "minimum": {Name: "minimum: 3600 / NAT", Dashed: true}}
	for _, r := range nats {
		learn := fmt.Sprintf("%.0f min | %d, %d", r.LearnMinutes, r.LearnHeartbeats, r.LearnDrops)
		if r.Mode == "fixed" {
			learn = "– | –"
		}
		fmt.Fprintf(&md, "| %gs | %s | %gs | %.1f | %.1f | %.2f× | %s | %d |\n", r.NATSeconds, r.Mode, r.IntervalSeconds, r.HeartbeatsPerHour, r.MinimumPerHour,
			r.HeartbeatsPerHour/r.MinimumPerHour, learn, r.SteadyDrops)
		lines[r.Mode].Points = append(lines[r.Mode].Points, report.Point{X: r.NATSeconds, Y: r.HeartbeatsPerHour})
		if r.Mode == "fixed" {
			lines["minimum"].Points = append(lines["minimum"].Points, report.Point{X: r.NATSeconds, Y: r.MinimumPerHour})
		}
	}
	put("liveness-nat.md", []byte(md.String()))
	var svg bytes.Buffer
	if err := report.LinesSVG(&svg, "Heartbeats per hour behind a NAT (one idle session, both sides' pings)", "NAT idle timeout, s", "heartbeats per hour",
		[]report.Line{*lines["fixed"], *lines["adaptive"], *lines["minimum"]}); err != nil {
		t.Fatal(err)
	}
	put("liveness-nat.svg", svg.Bytes())

	md.Reset()
	md.WriteString("| profile | timeout | RTT | client: last frame → dead | server: silence → dead | false positives in 2 min |\n|---|---|---|---|---|---|\n")
	lines = map[string]*report.Line{}
	var order []string
	for _, r := range dets {
		fmt.Fprintf(&md, "| %s | %s | %g ms | %.2f s | %.2f s | %d |\n", r.Profile, r.Mode, r.RTTms, r.ClientSeconds, r.ServerSeconds, r.FalsePositives)
		for _, side := range []string{"client", "server"} {
			key := r.Profile + " " + r.Mode + ", " + side
			l, ok := lines[key]
			if !ok {
				name := map[string]string{"fixed": "fixed", "rtt": "RTT-derived"}[r.Mode] + ", " + side
				l = &report.Line{Name: name, Dashed: side == "server"}
				lines[key] = l
				order = append(order, key)
			}
			y := r.ClientSeconds
			if side == "server" {
				y = r.ServerSeconds
			}
			l.Points = append(l.Points, report.Point{X: r.RTTms, Y: y})
		}
	}
	put("liveness-detection.md", []byte(md.String()))
	for _, pn := range []string{"datacenter", "default"} {
		var ls []report.Line
		for _, key := range order {
			if strings.HasPrefix(key, pn+" ") {
				ls = append(ls, *lines[key])
			}
		}
		svg.Reset()
		if err := report.LinesSVG(&svg, "Dead-peer detection against round-trip time: "+pn+" profile", "round-trip time, ms (±10 % jitter each way)", "silence before declared dead, s", ls); err != nil {
			t.Fatal(err)
		}
		put("liveness-detection-"+pn+".svg", svg.Bytes())
	}
}

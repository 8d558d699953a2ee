// Package scenario holds the driver's side of each benchmark scenario: it
// opens sessions of one system, runs a warm-up, reads the server's own
// stats around the measured window, and returns a Result. Scenarios use
// only the system interfaces, so they run unchanged against any system.
package scenario

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/bench/internal/ctl"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/profile"
)

// Spec is one measured case, as the orchestrator hands it to a driver.
type Spec struct {
	// Scenario is "push", "latency", "heartbeat", "fanout", "relay", "flow" or
	// "sendwait".
	Scenario string `json:"scenario"`
	// Case names the case in tables ("s2c 16×1 KiB").
	Case string `json:"case"`
	// Profile is the liveness profile of both sides.
	Profile string `json:"profile"`
	// Dir is "s2c" (server pushes) or "c2s" (clients send), for push.
	Dir      string `json:"dir,omitempty"`
	Sessions int    `json:"sessions"`
	Size     int    `json:"size"`
	// Window is push's app-level credit window (messages beyond the
	// client's last credit), for the systems that need one
	// (system.System.NeedsPushWindow); credits go every Window/4 messages.
	Window int `json:"window,omitempty"`
	// Warmup and Duration bound push and heartbeat.
	Warmup   time.Duration `json:"warmup,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	// WarmupCount and Count bound latency's round trips.
	WarmupCount int `json:"warmup_count,omitempty"`
	Count       int `json:"count,omitempty"`
	// Heartbeat is the interval asked for, for heartbeat.
	Heartbeat time.Duration `json:"heartbeat,omitempty"`
	// Broker is the server's broker, "memory" (or empty) or "nats" (the
	// orchestrator starts an embedded NATS server for the case).
	Broker string `json:"broker,omitempty"`
	// Consumer is flow's consumer: "keep" (reads flat out) or "slow"
	// (paced at the rate measured over the warm-up divided by Slowdown).
	Consumer string  `json:"consumer,omitempty"`
	Slowdown float64 `json:"slowdown,omitempty"`
	// Interval is the pause between sendwait's sends.
	Interval time.Duration `json:"interval,omitempty"`
	// Across puts relay's producer on another node than its consumer
	// (Env.Addrs[1]; the consumer is on Env.Addr).
	Across bool `json:"across,omitempty"`
	// Settle bounds how long relay and flow wait without progress for
	// the last messages.
	Settle time.Duration `json:"settle,omitempty"`
	// CPUProfile, when set, is where the server's CPU profile over the
	// measured window is written.
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// Result is one measured case of one system in one run.
type Result struct {
	Spec    Spec   `json:"spec"`
	System  string `json:"system"`
	Run     int    `json:"run"`
	Pinned  bool   `json:"pinned"`
	Elapsed string `json:"elapsed"`
	// LoadAvg is the machine's /proc/loadavg after the case: other work on
	// the machine shows here.
	LoadAvg string `json:"loadavg,omitempty"`
	// Metrics are the figures, by name (see the Metric* constants).
	Metrics map[string]float64 `json:"metrics"`
	// Server is the server process's own readings: after GC before the
	// warm-up and after the measured window (sessions still open), and
	// plain readings bracketing the window.
	ServerBefore ctl.Stats `json:"server_before"`
	ServerAfter  ctl.Stats `json:"server_after"`
	WindowStart  ctl.Stats `json:"window_start"`
	WindowEnd    ctl.Stats `json:"window_end"`
	// Samples are the latency samples in µs (latency, heartbeat).
	Samples []float64 `json:"samples_us,omitempty"`
	// Series are flow's per-second readings.
	Series []Sample `json:"series,omitempty"`
	// Notes are what a run saw that a number does not say (the first
	// reasons the sessions were cut, a producer's error).
	Notes []string `json:"notes,omitempty"`
}

// Metric names.
const (
	MetricRate       = "msgs_per_s"
	MetricCPUPerMsg  = "server_cpu_us_per_msg"
	MetricCPUPerOp   = "server_cpu_us_per_op" // per round trip (latency) or heartbeat
	MetricCores      = "server_cores"
	MetricP50        = "p50_us"
	MetricP99        = "p99_us"
	MetricP999       = "p999_us"
	MetricRTPerSec   = "round_trips_per_s"
	MetricSamples    = "samples"
	MetricGoroutines = "server_goroutines"
	MetricHeapStack  = "server_heap_stack_bytes"
	MetricRSS        = "server_rss_bytes"
)

// Env is what a driver needs to run a Spec against one server.
type Env struct {
	System system.System
	Addr   string
	// Addrs are every node's address when several nodes share a broker
	// (Addrs[0] is Addr, whose Control the driver reads); nil for one.
	Addrs   []string
	Control *ctl.Client
	// Progress receives progress lines (stderr).
	Progress func(format string, args ...any)
}

// node returns the address of node i (modulo the nodes), Addr when there
// is one node.
func (env Env) node(i int) string {
	if len(env.Addrs) == 0 {
		return env.Addr
	}
	return env.Addrs[i%len(env.Addrs)]
}

// Run runs spec and returns its result.
func Run(ctx context.Context, env Env, spec Spec) (*Result, error) {
	if env.Progress == nil {
		env.Progress = func(string, ...any) {}
	}
	start := time.Now()
	var (
		r   *Result
		err error
	)
	switch spec.Scenario {
	case "push":
		r, err = push(ctx, env, spec)
	case "latency":
		r, err = latency(ctx, env, spec)
	case "heartbeat":
		r, err = heartbeat(ctx, env, spec)
	case "fanout":
		r, err = fanout(ctx, env, spec)
	case "relay":
		r, err = relay(ctx, env, spec)
	case "flow":
		r, err = flow(ctx, env, spec)
	case "sendwait":
		r, err = sendWait(ctx, env, spec)
	default:
		return nil, fmt.Errorf("unknown scenario %q", spec.Scenario)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s on %s: %w", spec.Scenario, spec.Case, env.System.Name, err)
	}
	r.Spec, r.System, r.Elapsed = spec, env.System.Name, time.Since(start).Round(time.Millisecond).String()
	r.Metrics[MetricGoroutines] = float64(r.ServerAfter.Goroutines)
	r.Metrics[MetricHeapStack] = float64(r.ServerAfter.HeapStack)
	r.Metrics[MetricRSS] = float64(r.ServerAfter.RSS)
	return r, nil
}

// dialAll opens n sessions, spread over spread (0: back to back).
func dialAll(ctx context.Context, env Env, spec Spec, n int, spread time.Duration, opts system.ClientOptions) ([]system.Client, error) {
	p, err := profile.Lookup(spec.Profile)
	if err != nil {
		return nil, err
	}
	opts.Profile = p
	clients := make([]system.Client, 0, n)
	nonce := time.Now().UnixNano()
	for i := range n {
		o := opts
		o.ID = fmt.Sprintf("bench-%s-%d-%d", env.System.Name, nonce, i)
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		c, err := env.System.Dial(dctx, env.Addr, o)
		cancel()
		if err != nil {
			closeAll(clients)
			return nil, fmt.Errorf("session %d: %w", i, err)
		}
		clients = append(clients, c)
		if spread > 0 && i < n-1 {
			if err := Sleep(ctx, spread/time.Duration(n)); err != nil {
				closeAll(clients)
				return nil, err
			}
		}
	}
	return clients, nil
}

func closeAll(clients []system.Client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
}

// Sleep waits d, or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Percentile returns the q-quantile (0..1) of sorted samples, by nearest
// rank; NaN when there are none.
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyMetrics fills the percentile metrics from samples (µs); p99.9 is
// left out below 1000 samples, where it would be the maximum.
func latencyMetrics(m map[string]float64, samples []float64) {
	s := slices.Clone(samples)
	slices.Sort(s)
	m[MetricSamples] = float64(len(s))
	m[MetricP50] = Percentile(s, 0.50)
	m[MetricP99] = Percentile(s, 0.99)
	if len(s) >= 1000 {
		m[MetricP999] = Percentile(s, 0.999)
	}
}

// ProfileDriver starts a CPU profile of this (the driver's) process, to be
// written next to the server's profile at serverPath as *.driver.pprof; it
// does nothing when serverPath is empty. The returned func stops it.
func ProfileDriver(serverPath string) (stop func() error, err error) {
	if serverPath == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(strings.TrimSuffix(serverPath, ".pprof") + ".driver.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

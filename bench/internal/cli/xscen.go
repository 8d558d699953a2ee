package cli

// The idle, resume and detection scenarios. Each orchestrates processes
// of its own (a server with hooks, client processes, a restart, a
// SIGSTOP), so it runs here rather than in a drive process; every system
// is reached through the system interfaces and system.Ext only.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/bench/internal/ctl"
	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
	"github.com/tetherhq/tether/bench/internal/system"
)

// Metrics of these scenarios.
const (
	MetricKBPerSession    = "server_kb_per_session"
	MetricRSSKBPerSession = "server_rss_kb_per_session"
	MetricStackKBPerSess  = "server_stack_kb_per_session"
	MetricGoPerSession    = "server_goroutines_per_session"
	MetricCPUPerHeartbeat = "server_cpu_us_per_heartbeat"
	MetricResumeP50       = "resume_p50_ms"
	MetricResumeP99       = "resume_p99_ms"
	MetricCompletion      = "completion_s"
	MetricEstablishRate   = "sessions_per_s"
	MetricLost            = "lost"
	MetricDuplicated      = "duplicated"
	MetricServerDetect    = "server_detect_s"
	MetricClientDetect    = "client_detect_s"
	MetricBound           = "bound_s"
	MetricEarliest        = "earliest_s"
	MetricFalsePositive   = "false_positives"
	MetricResumedCount    = "resumed"
	MetricFailoverP50     = "failover_p50_ms"
	MetricFailoverP99     = "failover_p99_ms"
	MetricAgain           = "established_again"
	MetricLostC2S         = "lost_c2s"
	MetricLostS2C         = "lost_s2c"
	MetricNotBack         = "not_back"
)

func init() {
	for k, v := range map[string]string{
		MetricKBPerSession:    "server heap+stack KB/session",
		MetricRSSKBPerSession: "server RSS KB/session",
		MetricStackKBPerSess:  "of which goroutine stacks KB/session",
		MetricGoPerSession:    "server goroutines/session",
		MetricCPUPerHeartbeat: "server CPU µs/heartbeat",
		MetricResumeP50:       "p50 ms",
		MetricResumeP99:       "p99 ms",
		MetricCompletion:      "completion s",
		MetricEstablishRate:   "sessions/s",
		MetricLost:            "lost msgs",
		MetricDuplicated:      "duplicated msgs",
		MetricServerDetect:    "server detects, s",
		MetricClientDetect:    "client detects, s",
		MetricBound:           "documented bound, s",
		MetricEarliest:        "no detection before, s",
		MetricFalsePositive:   "false positives",
		MetricResumedCount:    "sessions resumed (resumed=true)",
		MetricFailoverP50:     "kill → session back, p50 ms",
		MetricFailoverP99:     "kill → session back, p99 ms",
		MetricAgain:           "sessions established again after coming back",
		MetricLostC2S:         "of which client → server",
		MetricLostS2C:         "of which server → client",
		MetricNotBack:         "sessions not back within 3 min",
	} {
		report.Labels[k] = v
	}
}

// startXServer starts an xserve process on listen (with --track when
// track) and waits for its ready line.
func startXServer(ctx context.Context, stderr io.Writer, sys, prof, listen string, track bool) (*serverProc, error) {
	args := []string{"xserve", "--system", sys, "--profile", prof, "--listen", listen}
	if track {
		args = append(args, "--track")
	}
	return startServer(ctx, false, stderr, sys, args...)
}

func (s *serverProc) state(ctx context.Context, gc bool) (ctl.Stats, xstate, error) {
	var st xstate
	stats, err := s.ctl.Stats(ctx, gc, &st)
	return stats, st, err
}

// notApplicable is what a scenario's body returns for a case the system
// has no twin of (its cell in the table stays empty).
type notApplicable struct{ why string }

func (n notApplicable) Error() string { return "not applicable: " + n.why }

// xloop runs body for every system and run, alternating the systems'
// order from run to run, and stamps each result.
func xloop(c *common, systems []string, cases []string, stderr io.Writer, body func(sys, cs string, run int) (*scenario.Result, error)) ([]*scenario.Result, error) {
	var results []*scenario.Result
	total, done, start := c.runs*len(systems)*len(cases), 0, time.Now()
	for run := 1; run <= c.runs; run++ {
		order := slices.Clone(systems)
		if run%2 == 0 {
			slices.Reverse(order)
		}
		for _, cs := range cases {
			for _, sys := range order {
				done++
				fmt.Fprintf(stderr, "[%d/%d %s] run %d/%d: %s on %s\n", done, total, time.Since(start).Round(time.Second), run, c.runs, cs, sys)
				t0 := time.Now()
				r, err := body(sys, cs, run)
				var na notApplicable
				if errors.As(err, &na) {
					fmt.Fprintf(stderr, "    not applicable: %s\n", na.why)
					continue
				}
				if err != nil {
					return results, fmt.Errorf("%s on %s: %w", cs, sys, err)
				}
				r.System, r.Run, r.Elapsed = sys, run, time.Since(t0).Round(time.Millisecond).String()
				r.Spec.Case = cs
				r.LoadAvg = machine().LoadAvg
				var parts []string
				for _, k := range slices.Sorted(func(yield func(string) bool) {
					for k := range r.Metrics {
						if !yield(k) {
							return
						}
					}
				}) {
					parts = append(parts, fmt.Sprintf("%s=%.4g", k, r.Metrics[k]))
				}
				fmt.Fprintf(stderr, "    %s (loadavg %s)\n", strings.Join(parts, " "), r.LoadAvg)
				results = append(results, r)
			}
		}
	}
	return results, nil
}

// ---- idle ----

func runIdle(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	fs, c := newFlags("idle", stderr)
	cases := fs.String("cases", "conns,mux", "conns: one connection per session (SDK / raw Dial) in client processes; mux: sessions multiplexed over --mux-conns connections")
	connSessions := fs.Int("conn-sessions", 10000, "conns: sessions (one connection each)")
	perProcess := fs.Int("per-process", 5000, "conns: sessions per client process (each below the 20,000 fd limit)")
	muxSessions := fs.Int("mux-sessions", 100000, "mux: sessions")
	muxConns := fs.Int("mux-conns", 1000, "mux: connections carrying them")
	muxPerProcess := fs.Int("mux-per-process", 50000, "mux: sessions per client process")
	hb := fs.Duration("heartbeat", 30*time.Second, "heartbeat interval asked for (tether) and raw app-level ping interval; sessions open spread over one")
	window := fs.Duration("window", 60*time.Second, "CPU measuring window")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last session opened before reading memory")
	prof := fs.String("profile", "default", "liveness profile")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	var names []string
	type idleCase struct{ n, conns, per int }
	byName := map[string]idleCase{}
	for _, cs := range strings.Split(*cases, ",") {
		var ic idleCase
		var name string
		switch cs {
		case "conns":
			ic, name = idleCase{*connSessions, 0, *perProcess}, fmt.Sprintf("%d sessions on %d conns", *connSessions, *connSessions)
		case "mux":
			ic, name = idleCase{*muxSessions, *muxConns, *muxPerProcess}, fmt.Sprintf("%d sessions over %d conns", *muxSessions, *muxConns)
		default:
			return fmt.Errorf("--cases: unknown case %q", cs)
		}
		names = append(names, name)
		byName[name] = ic
	}
	ctx := context.Background()
	results, err := xloop(c, systems, names, stderr, func(sys, cs string, run int) (*scenario.Result, error) {
		ic := byName[cs]
		if ic.conns > 0 {
			if ext, err := system.LookupExt(sys); err != nil || ext.DialMux == nil {
				return nil, notApplicable{sys + " carries one session per connection"}
			}
		}
		srv, err := startXServer(ctx, stderr, sys, *prof, "127.0.0.1:0", false)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		r := &scenario.Result{Metrics: map[string]float64{}, Spec: scenario.Spec{Scenario: "idle", Profile: *prof, Sessions: ic.n, Heartbeat: *hb, Duration: *window}}
		if r.ServerBefore, _, err = srv.state(ctx, true); err != nil {
			return nil, err
		}
		clients, err := startClients(ctx, stderr, ic.n, ic.per, *hb+10*time.Minute, func(i, procs int) []string {
			a := []string{"--system", sys, "--addr", srv.Addr, "--profile", *prof, "--heartbeat", hb.String(),
				"--spread", hb.String(), "--offset", (*hb * time.Duration(i) / time.Duration(ic.n)).String(),
				"--id", fmt.Sprintf("idle-%s-%d-%d-%d", sys, run, time.Now().UnixNano(), i)}
			if ic.conns > 0 {
				a = append(a, "--conns", fmt.Sprint(max(1, ic.conns/procs)))
			}
			return a
		})
		if err != nil {
			return nil, err
		}
		defer quitAll(clients)
		if err := scenario.Sleep(ctx, *settle); err != nil {
			return nil, err
		}
		if r.ServerAfter, _, err = srv.state(ctx, true); err != nil {
			return nil, err
		}
		if r.WindowStart, _, err = srv.state(ctx, false); err != nil {
			return nil, err
		}
		path := ""
		if c.cpuProfile != "" && run == 1 {
			path = fmt.Sprintf("%s/idle-%s-%s.pprof", c.cpuProfile, slug(cs), sys)
			if err := os.MkdirAll(c.cpuProfile, 0o755); err != nil {
				return nil, err
			}
			if err := srv.ctl.HeapProfile(ctx, strings.TrimSuffix(path, ".pprof")+".heap.pprof"); err != nil {
				return nil, fmt.Errorf("heap profile: %w", err)
			}
		}
		t0 := time.Now()
		profiled := srv.ctl.ProfileAsync(ctx, *window, path)
		if err := scenario.Sleep(ctx, *window); err != nil {
			return nil, err
		}
		if r.WindowEnd, _, err = srv.state(ctx, false); err != nil {
			return nil, err
		}
		el := time.Since(t0)
		if err := <-profiled; err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		n := float64(ic.n)
		r.Metrics[MetricKBPerSession] = (float64(r.ServerAfter.HeapStack) - float64(r.ServerBefore.HeapStack)) / n / 1000
		r.Metrics[MetricStackKBPerSess] = (float64(r.ServerAfter.Stack) - float64(r.ServerBefore.Stack)) / n / 1000
		r.Metrics[MetricRSSKBPerSession] = (float64(r.ServerAfter.RSS) - float64(r.ServerBefore.RSS)) / n / 1000
		r.Metrics[MetricGoPerSession] = float64(r.ServerAfter.Goroutines-r.ServerBefore.Goroutines) / n
		cpu := r.WindowEnd.CPU - r.WindowStart.CPU
		r.Metrics[scenario.MetricCores] = cpu.Seconds() / el.Seconds()
		r.Metrics[MetricCPUPerHeartbeat] = float64(cpu.Microseconds()) / (n * el.Seconds() / hb.Seconds())
		return r, nil
	})
	if err != nil {
		return err
	}
	return output(c, stdout, "idle", args, systems, results,
		[]string{MetricKBPerSession, MetricStackKBPerSess, MetricRSSKBPerSession, MetricGoPerSession, scenario.MetricCores, MetricCPUPerHeartbeat}, nil)
}

// startClients starts xclient processes holding n sessions between them,
// at most per each, and waits up to timeout until each has opened its
// sessions; args(i, procs) are process i's flags besides --sessions. On an
// error it quits the processes it started.
func startClients(ctx context.Context, stderr io.Writer, n, per int, timeout time.Duration, args func(i, procs int) []string) ([]*proc, error) {
	procs := (n + per - 1) / per
	var clients []*proc
	for i := range procs {
		k := n / procs
		if i < n%procs {
			k++
		}
		p, err := startProc(ctx, false, stderr, append([]string{"xclient", "--sessions", fmt.Sprint(k)}, args(i, procs)...)...)
		if err != nil {
			quitAll(clients)
			return nil, err
		}
		clients = append(clients, p)
	}
	for _, p := range clients {
		if _, err := p.next(timeout); err != nil {
			quitAll(clients)
			return nil, err
		}
	}
	return clients, nil
}

// quitAll quits the processes at once and waits for them.
func quitAll(ps []*proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.quit)
	}
	wg.Wait()
}

// lockedWriter serialises writes: several child processes' stderr is
// copied into one writer at once.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

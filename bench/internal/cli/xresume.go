package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/profile"
)

// ---- resume ----

func runResume(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	fs, c := newFlags("resume", stderr)
	pendings := fs.String("pending", "0,1000", "single: messages pending for the client when its connection goes")
	count := fs.Int("count", 20, "single: resumes per run")
	fast := fs.Duration("fast-backoff", time.Nanosecond, "single: also run each case with the SDK's reconnect backoff base set to this (0: only the default, base 1s full jitter). The default, 1ns, retries at once, as the raw twin redials: the protocol's cost alone. A base below ~2ms mostly measures Go's timers, which on an idle process wait at least ~1.1ms for any delay under 1ms (the netpoller sleeps in whole milliseconds)")
	mass := fs.Int("mass", 10000, "mass: sessions resumed after a server restart (0 skips)")
	perProcess := fs.Int("per-process", 5000, "mass: sessions per client process")
	msgs := fs.Int("msgs", 2, "mass: tagged messages each session sends, and burst messages the server sends it, before and after the restart")
	svg := fs.String("svg", "", "mass: write the arrival histogram at the restarted server (run 1) as SVG to this file")
	prof := fs.String("profile", "default", "liveness profile")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	ps, err := intsZero(*pendings)
	if err != nil {
		return fmt.Errorf("--pending %w", err)
	}
	type single struct {
		pending int
		base    time.Duration
	}
	var names []string
	singles := map[string]single{}
	for _, b := range []time.Duration{0, *fast} {
		if b == 0 && len(names) > 0 {
			continue
		}
		for _, p := range ps {
			name := fmt.Sprintf("single, %d pending", p)
			if b > 0 {
				name += fmt.Sprintf(", SDK backoff base %v", b)
			}
			names = append(names, name)
			singles[name] = single{p, b}
		}
	}
	massName := fmt.Sprintf("mass: %d sessions after a server restart", *mass)
	if *mass > 0 {
		names = append(names, massName)
	}
	p, err := profile.Lookup(*prof)
	if err != nil {
		return err
	}
	ctx := context.Background()
	arrivals := map[string][]float64{}
	results, err := xloop(c, systems, names, stderr, func(sys, cs string, run int) (*scenario.Result, error) {
		if cs == massName {
			cpuProfile := ""
			if c.cpuProfile != "" && run == 1 {
				if err := os.MkdirAll(c.cpuProfile, 0o755); err != nil {
					return nil, err
				}
				cpuProfile = fmt.Sprintf("%s/mass-resume-%s.pprof", c.cpuProfile, sys)
			}
			r, arr, err := massResume(ctx, sys, *prof, *mass, *perProcess, *msgs, run, cpuProfile, stderr)
			if err == nil && run == 1 {
				arrivals[sys] = arr
			}
			return r, err
		}
		s := singles[cs]
		return singleResume(ctx, sys, *prof, p, s.pending, s.base, *count, run, stderr)
	})
	if err != nil {
		return err
	}
	if *svg != "" && len(arrivals) > 0 {
		var series []report.Series
		for _, sys := range systems {
			if a, ok := arrivals[sys]; ok {
				series = append(series, report.Series{Name: sys, Samples: a})
			}
		}
		f, err := os.Create(*svg)
		if err != nil {
			return err
		}
		err = report.HistogramSVG(f, fmt.Sprintf("Sessions established at the restarted server (%d sessions, run 1)", *mass), "ms after the old server was killed", series)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return output(c, stdout, "resume", args, systems, results,
		[]string{MetricResumeP50, MetricResumeP99, MetricCompletion, MetricEstablishRate, MetricLost, MetricDuplicated}, nil)
}

func intsZero(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 0 {
			return nil, fmt.Errorf("%q: want integers ≥ 0, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// singleResume times, count times, one session from "old connection
// gone" (a TCP reset of its connection by a faultproxy in between) to the
// first message sent after the break delivered back to the client.
//
// tether: the SDK session resumes by itself; with pending > 0 the server
// sent pending messages into a blackholed connection just before the
// reset, so they are replayed first. raw: a new connection, stream and
// first round trip (Dial); with pending > 0 the server then sends pending
// messages on request before the echo (an app-level replay).
func singleResume(ctx context.Context, sys, profName string, p profile.Profile, pending int, base time.Duration, count, run int, stderr io.Writer) (*scenario.Result, error) {
	ext, err := system.LookupExt(sys)
	if err != nil {
		return nil, err
	}
	if pending > 0 && ext.Resumes && !ext.Replays {
		return nil, notApplicable{sys + " reconnects by itself but loses what was sent into the broken connection"}
	}
	s, err := system.Lookup(sys)
	if err != nil {
		return nil, err
	}
	srv, err := startXServer(ctx, stderr, sys, profName, "127.0.0.1:0", true)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	px, err := faultproxy.Start(srv.Addr)
	if err != nil {
		return nil, err
	}
	defer px.Close()
	var samples []float64
	for it := 1; it <= count; it++ {
		d, err := resumeOnce(ctx, ext, s, px, p, pending, base, fmt.Sprintf("resume-%s-%d-%d-%d", sys, run, it, time.Now().UnixNano()), it)
		if err != nil {
			return nil, err
		}
		samples = append(samples, float64(d.Microseconds())/1e3)
	}
	r := &scenario.Result{Metrics: map[string]float64{}, Samples: samples, Spec: scenario.Spec{Scenario: "resume", Profile: profName, Sessions: 1, Count: count}}
	sorted := slices.Sorted(slices.Values(samples))
	r.Metrics[MetricResumeP50] = scenario.Percentile(sorted, 0.5)
	r.Metrics[MetricResumeP99] = scenario.Percentile(sorted, 0.99)
	return r, nil
}

// resumeOnce breaks one fresh session's connection once and times it: a
// fresh session each time, so that the SDK's backoff starts from its first
// attempt (repeated breaks within a minute would grow it).
func resumeOnce(ctx context.Context, ext system.Ext, s system.System, px *faultproxy.Proxy, p profile.Profile, pending int, base time.Duration, id string, it int) (time.Duration, error) {
	opts := system.ClientOptions{ID: id, Profile: p}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cl, err := ext.DialObserved(rctx, px.Addr(), opts, base, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = cl.Close() }()
	{
		echo := fmt.Appendf(nil, "E-%d", it)
		got := 0
		if ext.Replays && pending > 0 {
			if err := cl.Send(rctx, system.Burst(it, pending, 100*time.Millisecond)); err != nil {
				return 0, err
			}
			time.Sleep(30 * time.Millisecond)
			px.Blackhole(true)
			time.Sleep(400 * time.Millisecond)
		}
		t0 := time.Now()
		px.Reset()
		px.Blackhole(false)
		if ext.Resumes {
			if err := cl.Send(rctx, echo); err != nil {
				return 0, err
			}
		} else {
			_ = cl.Close()
			if cl, err = s.Dial(rctx, px.Addr(), opts); err != nil {
				return 0, err
			}
			if pending > 0 {
				if err := cl.Send(rctx, system.Burst(it, pending, 0)); err != nil {
					return 0, err
				}
			}
			if pending > 0 {
				if err := cl.Send(rctx, echo); err != nil {
					return 0, err
				}
			} else {
				echo = nil // Dial's own first round trip was the first message
			}
		}
		for echo != nil {
			b, err := cl.Recv(rctx)
			if err != nil {
				return 0, fmt.Errorf("resume %d: %w (%d of %d pending received)", it, err, got, pending)
			}
			if string(b) == string(echo) {
				break
			}
			if len(b) > 0 && b[0] == system.KindBurstMsg && strings.HasPrefix(string(b), fmt.Sprintf("b%d:", it)) {
				got++
			}
		}
		d := time.Since(t0)
		if got != pending {
			return 0, fmt.Errorf("resume %d: %d of %d pending messages arrived before the new one", it, got, pending)
		}
		return d, nil
	}
}

// freePort returns a loopback address nobody listens on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// massProfile is how long the restarted server is profiled: about the
// mass resume's completion.
const massProfile = 5 * time.Second

// massResume opens n sessions in client processes, exchanges tagged
// messages both ways, kills the server (SIGKILL) and starts a new one on
// the same address, and times until every session is established again
// (arrivals at the new server); then exchanges messages again and checks
// that every tagged message and every burst message arrived exactly once
// (what has not arrived 2 minutes into the second round is lost, with a
// note). cpuProfile, when set, is where a CPU profile of the restarted server over
// its first massProfile goes.
func massResume(ctx context.Context, sys, prof string, n, per, msgs, run int, cpuProfile string, stderr io.Writer) (*scenario.Result, []float64, error) {
	addr, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	srv, err := startXServer(ctx, stderr, sys, prof, addr, true)
	if err != nil {
		return nil, nil, err
	}
	defer func() { srv.stop() }()
	clients, err := startClients(ctx, stderr, n, per, 10*time.Minute, func(i, _ int) []string {
		return []string{"--system", sys, "--addr", addr, "--profile", prof,
			"--id", fmt.Sprintf("mass-%s-%d-%d-%d", sys, run, time.Now().UnixNano(), i)}
	})
	if err != nil {
		return nil, nil, err
	}
	defer quitAll(clients)
	if err := massRound(ctx, []*serverProc{srv}, clients, n, msgs, 1); err != nil {
		return nil, nil, err
	}
	time.Sleep(200 * time.Millisecond) // acks are batched (20 ms)
	_, before, err := srv.state(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if cpuProfile != "" {
		for i, p := range clients {
			path := fmt.Sprintf("%s.client%d.pprof", strings.TrimSuffix(cpuProfile, ".pprof"), i)
			if line, err := p.ask("profile "+path, time.Minute); err != nil || !strings.Contains(line, `"done"`) {
				return nil, nil, fmt.Errorf("client cpu profile: %v %s", err, line)
			}
		}
	}
	clientCPU := cpuAll(clients)
	t0 := time.Now()
	_ = srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.done
	if srv, err = startXServer(ctx, stderr, sys, prof, addr, true); err != nil {
		return nil, nil, err
	}
	profiled := srv.ctl.ProfileAsync(ctx, massProfile, cpuProfile)
	deadline := time.Now().Add(3 * time.Minute)
	var st struct{ arrivals []int64 }
	for {
		_, x, err := srv.state(ctx, false)
		if err != nil {
			return nil, nil, err
		}
		st.arrivals = x.Arrivals
		if len(x.Arrivals) >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%d of %d sessions back after %v", len(x.Arrivals), n, time.Since(t0))
		}
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(st.arrivals)
	arr := make([]float64, len(st.arrivals))
	for i, a := range st.arrivals {
		arr[i] = float64(a-t0.UnixNano()) / 1e6
	}
	completion := arr[len(arr)-1] / 1e3
	clientCPU = cpuAll(clients) - clientCPU
	if cpuProfile != "" {
		for _, p := range clients {
			if _, err := p.ask("unprofile", time.Minute); err != nil {
				return nil, nil, err
			}
		}
	}
	restarted, _, err := srv.state(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if err := <-profiled; err != nil {
		return nil, nil, fmt.Errorf("cpu profile: %w", err)
	}
	var short roundShort
	err = massRound(ctx, []*serverProc{srv}, clients, n, msgs, 2)
	if err != nil && !errors.As(err, &short) {
		return nil, nil, err
	}
	time.Sleep(200 * time.Millisecond)
	_, after, err := srv.state(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	rep, err := clientReport(clients)
	if err != nil {
		return nil, nil, err
	}
	r := &scenario.Result{Metrics: map[string]float64{}, Spec: scenario.Spec{Scenario: "mass-resume", Profile: prof, Sessions: n}}
	lost, dup := massOutcome(r, n, msgs, arr, after.Resumed, []map[string]int{before.Tally, after.Tally}, rep)
	if err != nil {
		r.Notes = append(r.Notes, short.Error()+": what is missing counts as lost")
	}
	q := func(p float64) float64 { return arr[min(len(arr)-1, int(p*float64(len(arr))))] / 1e3 }
	fmt.Fprintf(stderr, "    mass resume: %d sessions back in %.2fs (arrivals p10 %.2fs, p50 %.2fs, p90 %.2fs; %d resumed, %d fresh); client redials %d; lost %d, duplicated %d; CPU until the last arrival: clients %.2fs, new server %.2fs\n",
		len(arr), completion, q(0.1), q(0.5), q(0.9), after.Resumed, len(arr)-after.Resumed, rep.Redials, lost, dup, clientCPU.Seconds(), restarted.CPU.Seconds())
	return r, arr, nil
}

// massOutcome fills r's mass-resume metrics from the arrivals arr (ms
// after the kill, sorted), how many of them resumed, the tagged messages
// each server counted (both rounds) and the clients' report, and returns
// the messages lost and duplicated: each of the n sessions sent msgs
// tagged messages and got msgs burst messages per round, two rounds.
func massOutcome(r *scenario.Result, n, msgs int, arr []float64, resumed int, tallies []map[string]int, rep xreport) (lost, dup int) {
	all := map[string]int{}
	for _, t := range tallies {
		for k, v := range t {
			all[k] += v
		}
	}
	dup = rep.Duplicates
	for _, v := range all {
		dup += v - 1
	}
	lostC2S, lostS2C := 2*n*msgs-len(all), 2*n*msgs-rep.Distinct
	lost = lostC2S + lostS2C
	r.Metrics[MetricLostC2S] = float64(lostC2S)
	r.Metrics[MetricLostS2C] = float64(lostS2C)
	completion := arr[len(arr)-1] / 1e3
	r.Metrics[MetricCompletion] = completion
	r.Metrics[MetricEstablishRate] = float64(n) / completion
	r.Metrics[MetricLost] = float64(lost)
	r.Metrics[MetricDuplicated] = float64(dup)
	r.Metrics[MetricResumedCount] = float64(resumed)
	r.Metrics[MetricFailoverP50] = scenario.Percentile(arr, 0.5)
	r.Metrics[MetricFailoverP99] = scenario.Percentile(arr, 0.99)
	return lost, dup
}

// massRound runs round rd of a mass resume: every client process sends
// msgs tagged messages per session and asks for a burst of msgs; it waits
// until the servers together counted every tagged message of the round and
// the clients received every burst message so far.
func massRound(ctx context.Context, servers []*serverProc, clients []*proc, n, msgs, rd int) error {
	for _, cmd := range []string{"send", "burst"} {
		if err := askAll(clients, fmt.Sprintf("%s %d %d", cmd, rd, msgs), 5*time.Minute); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		have := 0
		failed := map[string]int{}
		for _, s := range servers {
			_, st, err := s.state(ctx, false)
			if err != nil {
				return err
			}
			for tag := range st.Tally {
				if strings.Contains(tag, fmt.Sprintf("/%d/", rd)) {
					have++
				}
			}
			for why, k := range st.SendFailures {
				failed[why] += k
			}
		}
		rep, err := clientReport(clients)
		if err != nil {
			return err
		}
		if have >= n*msgs && rep.Distinct >= n*msgs*rd {
			return nil
		}
		if time.Now().After(deadline) {
			return roundShort{fmt.Sprintf("round %d: after 2 minutes, servers have %d of %d tagged messages, clients %d of %d burst messages (burst messages the servers could not send, by reason: %v)", rd, have, n*msgs, rep.Distinct, n*msgs*rd, failed)}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// roundShort is massRound's error when the messages of a round did not
// all arrive in time.
type roundShort struct{ what string }

func (r roundShort) Error() string { return r.what }

// askAll asks every client process cmd at once and waits for the
// answers; an answer carrying an error is one.
func askAll(clients []*proc, cmd string, timeout time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, p := range clients {
		wg.Go(func() {
			line, err := p.ask(cmd, timeout)
			if err == nil && strings.Contains(line, `"error"`) {
				err = fmt.Errorf("client process %d, %q: %s", i, cmd, line)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func clientReport(clients []*proc) (xreport, error) {
	var sum xreport
	for _, p := range clients {
		line, err := p.ask("report", time.Minute)
		if err != nil {
			return sum, err
		}
		var r xreport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return sum, fmt.Errorf("report %q: %w", line, err)
		}
		sum.Sessions += r.Sessions
		sum.Received += r.Received
		sum.Distinct += r.Distinct
		sum.Duplicates += r.Duplicates
		sum.Redials += r.Redials
		sum.Errors += r.Errors
	}
	return sum, nil
}

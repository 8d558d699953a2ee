package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetherhq/tether/bench/internal/scenario"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/profile"
)

// ---- detection ----

func runDetection(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	fs, c := newFlags("detection", stderr)
	profiles := fs.String("profiles", "datacenter", "liveness profiles, comma-separated (datacenter, default, mobile: default takes ~1 min a run, mobile ~1.5 min; raw's keepalive bound is longer)")
	faults := fs.String("faults", "frozen,blackhole", "frozen: SIGSTOP of the client process (TCP stays up); blackhole: a faultproxy drops every byte both ways")
	settle := fs.Duration("settle", 500*time.Millisecond, "idle time after the session opened, before the fault")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	type dcase struct {
		fault string
		prof  profile.Profile
	}
	var names []string
	cases := map[string]dcase{}
	for _, pn := range strings.Split(*profiles, ",") {
		p, err := profile.Lookup(strings.TrimSpace(pn))
		if err != nil {
			return err
		}
		for _, f := range strings.Split(*faults, ",") {
			if f != "frozen" && f != "blackhole" {
				return fmt.Errorf("--faults: unknown fault %q", f)
			}
			name := fmt.Sprintf("%s, %s", f, p.Name)
			names = append(names, name)
			cases[name] = dcase{f, p}
		}
	}
	ctx := context.Background()
	results, err := xloop(c, systems, names, stderr, func(sys, cs string, run int) (*scenario.Result, error) {
		dc := cases[cs]
		return detect(ctx, sys, dc.fault, dc.prof, *settle, run, stderr)
	})
	if err != nil {
		return err
	}
	return output(c, stdout, "detection", args, systems, results,
		[]string{MetricServerDetect, MetricClientDetect, MetricBound, MetricEarliest, MetricFalsePositive}, nil)
}

// detect opens one idle session, injects the fault, and times the
// server's (and, for a blackhole, the client's) detection from the
// moment of the fault.
func detect(ctx context.Context, sys, fault string, p profile.Profile, settle time.Duration, run int, stderr io.Writer) (*scenario.Result, error) {
	ext, err := system.LookupExt(sys)
	if err != nil {
		return nil, err
	}
	srv, err := startXServer(ctx, stderr, sys, p.Name, "127.0.0.1:0", true)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	bound, earliest := ext.Bound(system.ServerOptions{Profile: p})
	r := &scenario.Result{Metrics: map[string]float64{}, Spec: scenario.Spec{Scenario: "detection", Profile: p.Name, Sessions: 1}}
	r.Metrics[MetricBound] = bound.Seconds()
	r.Metrics[MetricEarliest] = earliest.Seconds()
	id := fmt.Sprintf("detect-%s-%d-%d", sys, run, time.Now().UnixNano())
	var (
		t0         time.Time
		clientDown = make(chan time.Time, 1)
		cleanup    func()
	)
	switch fault {
	case "frozen":
		cl, err := startProc(ctx, false, stderr, "xclient", "--system", sys, "--addr", srv.Addr, "--profile", p.Name, "--sessions", "1", "--id", id)
		if err != nil {
			return nil, err
		}
		if _, err := cl.next(time.Minute); err != nil {
			cl.kill()
			return nil, err
		}
		time.Sleep(settle)
		t0 = time.Now()
		if err := cl.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			cl.kill()
			return nil, err
		}
		cleanup = func() {
			_ = cl.cmd.Process.Signal(syscall.SIGCONT)
			cl.kill()
		}
	case "blackhole":
		px, err := faultproxy.Start(srv.Addr)
		if err != nil {
			return nil, err
		}
		var once sync.Once
		cl, err := ext.DialObserved(ctx, px.Addr(), system.ClientOptions{ID: id, Profile: p}, 0, func(string) {
			once.Do(func() { clientDown <- time.Now() })
		})
		if err != nil {
			px.Close()
			return nil, err
		}
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for rctx.Err() == nil {
				if _, err := cl.Recv(rctx); err != nil && !ext.Resumes {
					return
				}
			}
		})
		time.Sleep(settle)
		t0 = time.Now()
		px.Blackhole(true)
		cleanup = func() {
			cancel()
			px.Close()
			_ = cl.Close()
			wg.Wait()
		}
	}
	defer cleanup()
	limit := bound + max(bound/2, 5*time.Second)
	deadline := t0.Add(limit)
	var serverAt time.Time
	for serverAt.IsZero() && time.Now().Before(deadline) {
		_, st, err := srv.state(ctx, false)
		if err != nil {
			return nil, err
		}
		if len(st.Downs) > 0 {
			serverAt = time.Unix(0, st.Downs[0].At)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if serverAt.IsZero() {
		return nil, fmt.Errorf("server did not detect the %s peer within %v (bound %v)", fault, limit, bound)
	}
	d := serverAt.Sub(t0)
	r.Metrics[MetricServerDetect] = d.Seconds()
	if d < earliest {
		r.Metrics[MetricFalsePositive] = 1
	} else {
		r.Metrics[MetricFalsePositive] = 0
	}
	if fault == "blackhole" {
		select {
		case at := <-clientDown:
			r.Metrics[MetricClientDetect] = at.Sub(t0).Seconds()
		case <-time.After(time.Until(deadline)):
			fmt.Fprintf(stderr, "    client did not notice the blackhole within %v\n", limit)
		}
	}
	return r, nil
}

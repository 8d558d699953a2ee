package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/bench/internal/ctl"
	"github.com/tetherhq/tether/bench/internal/system"
)

// push measures one-way throughput. s2c: every session asks the server's
// App to push Size-byte messages as fast as the system's Send lets it
// (tether: the session's bounded outbound log and the SDK's receive
// window; a Send refused as full is retried by the App; raw: HTTP/2 flow
// control blocks SendMsg), or, for a system that NeedsPushWindow, paced by
// the App's credit window of Spec.Window messages; the rate is what the
// clients received. c2s: every session sends as fast
// as its Send lets it; the rate is what the server's App counted.
func push(ctx context.Context, env Env, spec Spec) (*Result, error) {
	clients, err := dialAll(ctx, env, spec, spec.Sessions, 0, system.ClientOptions{})
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	r := &Result{Metrics: map[string]float64{}}
	if r.ServerBefore, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	var received atomic.Uint64 // s2c: by the clients
	count := func() (uint64, ctl.Stats, error) {
		if spec.Dir == "s2c" {
			n := received.Load()
			st, err := env.Control.Stats(ctx, false, nil)
			return n, st, err
		}
		var app system.Counters
		st, err := env.Control.Stats(ctx, false, &app)
		return app.Received, st, err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	switch spec.Dir {
	case "s2c":
		window := 0
		if env.System.NeedsPushWindow {
			window = max(spec.Window, 1)
		}
		every := uint64(max(window/4, 1))
		if window == 0 {
			every = 0 // no credits
		}
		for _, c := range clients {
			wg.Go(func() { receivePushed(loadCtx, c, every, &received) })
			if err := c.Send(ctx, system.PushRequest(spec.Size, window)); err != nil {
				return nil, err
			}
		}
	case "c2s":
		payload := system.Payload(system.KindSink, spec.Size)
		for _, c := range clients {
			wg.Go(func() {
				for loadCtx.Err() == nil && c.Send(loadCtx, payload) == nil {
				}
			})
		}
	default:
		return nil, fmt.Errorf("push: unknown direction %q (s2c or c2s)", spec.Dir)
	}
	if err := Sleep(ctx, spec.Warmup); err != nil {
		return nil, err
	}
	n0, s0, err := count()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	profiled := env.Control.ProfileAsync(ctx, spec.Duration, spec.CPUProfile)
	stopDriverProfile, err := ProfileDriver(spec.CPUProfile)
	if err != nil {
		return nil, err
	}
	env.Progress("  measuring %v", spec.Duration)
	if err := Sleep(ctx, spec.Duration); err != nil {
		return nil, err
	}
	if err := stopDriverProfile(); err != nil {
		return nil, err
	}
	n1, s1, err := count()
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	if err := <-profiled; err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	r.WindowStart, r.WindowEnd = s0, s1
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	if spec.Dir == "s2c" {
		for _, c := range clients {
			_ = c.Send(ctx, []byte{system.KindStop})
		}
	}
	stopLoad()
	closeAll(clients)
	wg.Wait()
	msgs := float64(n1 - n0)
	cpu := s1.CPU - s0.CPU
	r.Metrics[MetricRate] = msgs / elapsed.Seconds()
	if msgs == 0 {
		// A measurement too (tether before issue 15: a session pushed
		// flat out was cut as a slow consumer and waited out its
		// reconnect backoff); no CPU per message then.
		r.Notes = append(r.Notes, fmt.Sprintf("no message got through in the %v window", elapsed.Round(time.Millisecond)))
	} else {
		r.Metrics[MetricCPUPerMsg] = float64(cpu.Microseconds()) / msgs
	}
	r.Metrics[MetricCores] = cpu.Seconds() / elapsed.Seconds()
	return r, nil
}

// receivePushed counts pushed messages and returns a credit every every
// messages (never when every is 0), until Recv fails.
func receivePushed(ctx context.Context, c system.Client, every uint64, received *atomic.Uint64) {
	var n uint64
	for {
		b, err := c.Recv(ctx)
		if err != nil {
			return
		}
		if len(b) == 0 || b[0] != system.KindPushed {
			continue
		}
		n++
		received.Add(1)
		if every > 0 && n%every == 0 {
			if c.Send(ctx, system.Credit(n)) != nil {
				return
			}
		}
	}
}

package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/bench/internal/system"
)

// roundTripProfile is how long the round trip is profiled (--cpuprofile).
const roundTripProfile = 3 * time.Second

// latency measures the business round trip: one session sends a Size-byte
// message, the server's App sends it back on the same stream, and the
// next goes once the reply arrived. Count round trips after WarmupCount.
func latency(ctx context.Context, env Env, spec Spec) (*Result, error) {
	clients, err := dialAll(ctx, env, spec, 1, 0, system.ClientOptions{})
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	c := clients[0]
	r := &Result{Metrics: map[string]float64{}}
	if r.ServerBefore, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	payload := system.Payload(system.KindEcho, spec.Size)
	roundTrip := func() (time.Duration, error) {
		t := time.Now()
		if err := c.Send(ctx, payload); err != nil {
			return 0, err
		}
		if _, err := c.Recv(ctx); err != nil {
			return 0, err
		}
		return time.Since(t), nil
	}
	for range spec.WarmupCount {
		if _, err := roundTrip(); err != nil {
			return nil, err
		}
	}
	if r.WindowStart, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	r.Samples = make([]float64, spec.Count)
	t0 := time.Now()
	for i := range spec.Count {
		d, err := roundTrip()
		if err != nil {
			return nil, err
		}
		r.Samples[i] = float64(d.Nanoseconds()) / 1e3
	}
	elapsed := time.Since(t0)
	if r.WindowEnd, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	if spec.CPUProfile != "" {
		// Round trips of their own, after the measured ones, so that the
		// profilers' cost stays out of the samples.
		stop, err := ProfileDriver(spec.CPUProfile)
		if err != nil {
			return nil, err
		}
		profiled := env.Control.ProfileAsync(ctx, roundTripProfile, spec.CPUProfile)
		for end := time.Now().Add(roundTripProfile + 100*time.Millisecond); time.Now().Before(end); {
			if _, err := roundTrip(); err != nil {
				return nil, err
			}
		}
		if err := stop(); err != nil {
			return nil, err
		}
		if err := <-profiled; err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	latencyMetrics(r.Metrics, r.Samples)
	r.Metrics[MetricRTPerSec] = float64(spec.Count) / elapsed.Seconds()
	r.Metrics[MetricCPUPerOp] = float64((r.WindowEnd.CPU - r.WindowStart.CPU).Microseconds()) / float64(spec.Count)
	return r, nil
}

// heartbeat measures the heartbeat round trip on idle sessions: Sessions
// sessions opened spread over one interval, each asking for Heartbeat;
// tether reports the SDK's ping/pong RTT (WithOnRTT), raw an app-level
// ping/pong at the same interval. Samples over Duration after one
// interval of warm-up; also the server's CPU per heartbeat.
func heartbeat(ctx context.Context, env Env, spec Spec) (*Result, error) {
	var (
		mu        sync.Mutex
		samples   []float64
		measuring atomic.Bool
	)
	onRTT := func(d time.Duration) {
		if measuring.Load() {
			mu.Lock()
			samples = append(samples, float64(d.Nanoseconds())/1e3)
			mu.Unlock()
		}
	}
	clients, err := dialAll(ctx, env, spec, spec.Sessions, spec.Heartbeat, system.ClientOptions{Heartbeat: spec.Heartbeat, OnRTT: onRTT})
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for {
				if _, err := c.Recv(ctx); err != nil {
					return
				}
			}
		})
	}
	r := &Result{Metrics: map[string]float64{}}
	if r.ServerBefore, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	if err := Sleep(ctx, spec.Heartbeat+spec.Warmup); err != nil {
		return nil, err
	}
	if r.WindowStart, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	measuring.Store(true)
	t0 := time.Now()
	profiled := env.Control.ProfileAsync(ctx, spec.Duration, spec.CPUProfile)
	env.Progress("  measuring %v", spec.Duration)
	if err := Sleep(ctx, spec.Duration); err != nil {
		return nil, err
	}
	measuring.Store(false)
	elapsed := time.Since(t0)
	if err := <-profiled; err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if r.WindowEnd, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	closeAll(clients)
	wg.Wait()
	mu.Lock()
	r.Samples = samples
	mu.Unlock()
	if len(r.Samples) == 0 {
		return nil, fmt.Errorf("no heartbeat round trip in %v", elapsed)
	}
	latencyMetrics(r.Metrics, r.Samples)
	cpu := r.WindowEnd.CPU - r.WindowStart.CPU
	r.Metrics[MetricCPUPerOp] = float64(cpu.Microseconds()) / float64(len(r.Samples))
	r.Metrics[MetricCores] = cpu.Seconds() / elapsed.Seconds()
	return r, nil
}

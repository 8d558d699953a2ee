package scenario

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/profile"
)

// fanoutTopic is the topic every subscriber of the fan-out joins.
const fanoutTopic = "fanout"

// MetricLost counts the deliveries of the measured publishes that never
// arrived (fan-out).
const MetricLost = "lost_deliveries"

// fanoutStall is how long a publish may go without completing before the
// rest of its deliveries count as lost.
const fanoutStall = 15 * time.Second

// fanoutProfile is how much of the measured window the server's CPU
// profile covers; the driver's (the subscribers') covers all of it.
const fanoutProfile = 2 * time.Second

// fanout runs the fan-out scenario (Spec.Scenario "fanout"). Sessions
// subscribers, each its own session on its own connection, subscribe to
// one topic; one more session (the publisher) asks the server's App to
// publish Size-byte messages to the topic (KindFanout), at most Window
// publishes in flight (a publish is complete when every subscriber got it),
// WarmupCount publishes then Count measured ones. Each message carries the
// server's publish time: the delay is receipt minus publish time, over
// every delivery; the rate is deliveries per second over the measured
// publishes; the server's CPU is per delivery.
func fanout(ctx context.Context, env Env, spec Spec) (*Result, error) {
	n := spec.Sessions
	window := max(spec.Window, 1)
	total := spec.WarmupCount + spec.Count
	if n < 1 || spec.Count < 1 {
		return nil, fmt.Errorf("fanout: need subscribers and publishes (got %d, %d)", n, spec.Count)
	}
	env.Progress("  opening %d subscribers", n)
	subs, err := dialSubscribers(ctx, env, spec, n)
	if err != nil {
		return nil, err
	}
	defer closeAll(subs)
	pubs, err := dialAll(ctx, env, spec, 1, 0, system.ClientOptions{})
	if err != nil {
		return nil, err
	}
	defer closeAll(pubs)
	pub := pubs[0]

	counts := make([]atomic.Int32, total)
	completed := make(chan uint32, total)
	measuredFrom := uint32(spec.WarmupCount)
	delays := make([][]float64, n)
	var wg sync.WaitGroup
	rctx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	for i, c := range subs {
		delays[i] = make([]float64, 0, spec.Count)
		wg.Go(func() {
			for {
				b, err := c.Recv(rctx)
				if err != nil {
					return
				}
				seq, published, ok := system.Fanned(b)
				if !ok || int(seq) >= total {
					continue
				}
				if seq >= measuredFrom {
					delays[i] = append(delays[i], float64(time.Since(published).Nanoseconds())/1e3)
				}
				if counts[seq].Add(1) == int32(n) {
					completed <- seq
				}
			}
		})
	}

	r := &Result{Metrics: map[string]float64{}}
	if r.ServerBefore, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	// publish runs publishes [from, to) with at most window in flight and
	// returns once all completed or one stalled.
	publish := func(from, to uint32) error {
		next, inflight := from, 0
		send := func() error {
			err := pub.Send(ctx, system.FanoutRequest(fanoutTopic, next, spec.Size))
			next++
			inflight++
			return err
		}
		for next < to && inflight < window {
			if err := send(); err != nil {
				return err
			}
		}
		stall := time.NewTimer(fanoutStall)
		defer stall.Stop()
		for inflight > 0 {
			select {
			case <-completed:
				inflight--
				stall.Reset(fanoutStall)
				if next < to {
					if err := send(); err != nil {
						return err
					}
				}
			case <-stall.C:
				return nil // the missing deliveries count as lost
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	env.Progress("  warm-up: %d publishes", spec.WarmupCount)
	if err := publish(0, measuredFrom); err != nil {
		return nil, err
	}
	if r.WindowStart, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	env.Progress("  measuring %d publishes × %d subscribers", spec.Count, n)
	// The window's length is not known in advance: profile its first
	// fanoutProfile.
	profiled := env.Control.ProfileAsync(ctx, fanoutProfile, spec.CPUProfile)
	stopDriverProfile, err := ProfileDriver(spec.CPUProfile)
	if err != nil {
		return nil, fmt.Errorf("driver cpu profile: %w", err)
	}
	t0 := time.Now()
	err = publish(measuredFrom, uint32(total))
	elapsed := time.Since(t0)
	if perr := stopDriverProfile(); err == nil && perr != nil {
		err = fmt.Errorf("driver cpu profile: %w", perr)
	}
	if err != nil {
		return nil, err
	}
	if err := <-profiled; err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if r.WindowEnd, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	stopRecv()
	closeAll(subs)
	wg.Wait()

	var delivered int64
	for i := measuredFrom; i < uint32(total); i++ {
		delivered += int64(counts[i].Load())
	}
	if delivered == 0 {
		return nil, fmt.Errorf("no delivery in %v", elapsed)
	}
	all := make([]float64, 0, delivered)
	for _, d := range delays {
		all = append(all, d...)
	}
	slices.Sort(all)
	r.Metrics[MetricSamples] = float64(len(all))
	r.Metrics[MetricP50] = Percentile(all, 0.50)
	r.Metrics[MetricP99] = Percentile(all, 0.99)
	if len(all) >= 1000 {
		r.Metrics[MetricP999] = Percentile(all, 0.999)
	}
	r.Metrics[MetricRate] = float64(delivered) / elapsed.Seconds()
	r.Metrics[MetricLost] = float64(int64(spec.Count)*int64(n) - delivered)
	cpu := r.WindowEnd.CPU - r.WindowStart.CPU
	r.Metrics[MetricCPUPerMsg] = float64(cpu.Nanoseconds()) / 1e3 / float64(delivered)
	r.Metrics[MetricCores] = cpu.Seconds() / elapsed.Seconds()
	return r, nil
}

// dialSubscribers opens n sessions, 16 at a time, each subscribed to the
// fan-out topic once it returns; subscriber i on node i (modulo the
// nodes) when several share a broker.
func dialSubscribers(ctx context.Context, env Env, spec Spec, n int) ([]system.Client, error) {
	p, err := profile.Lookup(spec.Profile)
	if err != nil {
		return nil, err
	}
	clients := make([]system.Client, n)
	errs := make([]error, n)
	nonce := time.Now().UnixNano()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				c, err := env.System.Dial(dctx, env.node(i), system.ClientOptions{ID: fmt.Sprintf("fan-%s-%d-%d", env.System.Name, nonce, i), Profile: p})
				if err == nil {
					s, ok := c.(system.Subscriber)
					if !ok {
						err = fmt.Errorf("system %s has no topics (system.Subscriber)", env.System.Name)
					} else {
						err = s.Subscribe(dctx, fanoutTopic)
					}
					clients[i] = c
				}
				cancel()
				if err != nil {
					errs[i] = fmt.Errorf("subscriber %d: %w", i, err)
					next.Store(int64(n)) // stop the others
					return
				}
				if (i+1)%2000 == 0 {
					env.Progress("  %d/%d subscribers", i+1, n)
				}
			}
		})
	}
	wg.Wait()
	var opened []system.Client
	for _, c := range clients {
		if c != nil {
			opened = append(opened, c)
		}
	}
	for _, err := range errs {
		if err != nil {
			closeAll(opened)
			return nil, err
		}
	}
	return opened, nil
}

package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/tetherhq/tether/bench/internal/system"
)

// sendWait measures one acknowledged message at a low rate: one session
// sends a Size-byte message and waits until the server has handled it
// (tether: SendWait, the server's ack; raw: a unary RPC round trip), then
// pauses Interval, so that nothing else is pending when it sends;
// WarmupCount sends, then Count measured ones.
func sendWait(ctx context.Context, env Env, spec Spec) (*Result, error) {
	clients, err := dialAll(ctx, env, spec, 1, 0, system.ClientOptions{})
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	w, ok := clients[0].(system.Waiter)
	if !ok {
		return nil, fmt.Errorf("system %s has no acknowledged send (no system.Waiter)", env.System.Name)
	}
	r := &Result{Metrics: map[string]float64{}}
	if r.ServerBefore, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	payload := system.Payload(system.KindSink, spec.Size)
	one := func() (time.Duration, error) {
		if err := Sleep(ctx, spec.Interval); err != nil {
			return 0, err
		}
		t := time.Now()
		err := w.SendWait(ctx, payload)
		return time.Since(t), err
	}
	for range spec.WarmupCount {
		if _, err := one(); err != nil {
			return nil, err
		}
	}
	if r.WindowStart, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	env.Progress("  measuring %d sends, %v apart", spec.Count, spec.Interval)
	r.Samples = make([]float64, 0, spec.Count)
	for range spec.Count {
		d, err := one()
		if err != nil {
			return nil, err
		}
		r.Samples = append(r.Samples, float64(d.Nanoseconds())/1e3)
	}
	if r.WindowEnd, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	latencyMetrics(r.Metrics, r.Samples)
	r.Metrics[MetricCPUPerOp] = float64((r.WindowEnd.CPU - r.WindowStart.CPU).Microseconds()) / float64(spec.Count)
	return r, nil
}

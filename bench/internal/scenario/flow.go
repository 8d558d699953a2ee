package scenario

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/tetherhq/tether/bench/internal/ctl"
)

// Sample is one of flow's per-second readings.
type Sample struct {
	// T is the end of the second, from the producer's start.
	T float64 `json:"t_s"`
	// Phase is "warmup", "measure" or "drain".
	Phase string `json:"phase"`
	// Produced and Received are msg/s over the second: accepted by the
	// producer's Send, and received by the consumer (duplicates included).
	Produced float64 `json:"produced_per_s"`
	Received float64 `json:"received_per_s"`
	// Backlog is accepted minus distinct received, at T.
	Backlog uint64 `json:"backlog"`
	// RSS and HeapStack are the server's, read without a GC.
	RSS       uint64 `json:"server_rss_bytes"`
	HeapStack uint64 `json:"server_heap_stack_bytes"`
}

// flowSample is how often flow reads the rates and the server's memory.
const flowSample = time.Second

// flow is issue 15's "producer faster than consumer": the producer sends
// Size-byte messages flat out to the consumer's client id for Warmup +
// Duration. Over the warm-up the consumer reads flat out, and its rate is
// the free rate; over the measured window it reads flat out (Consumer
// "keep") or at the free rate ÷ Slowdown ("slow", a rate.Limiter). Every
// second the producer's and the consumer's rates and the server's memory
// are read. Then the producer stops, the consumer reads flat out until it
// has every message the producer's Send accepted (or nothing came for
// Settle), and every message is checked: lost, duplicated, reordered.
func flow(ctx context.Context, env Env, spec Spec) (*Result, error) {
	if spec.Consumer != "keep" && spec.Consumer != "slow" {
		return nil, fmt.Errorf("flow: consumer %q: keep or slow", spec.Consumer)
	}
	if spec.Duration <= 0 || spec.Warmup <= 0 {
		return nil, fmt.Errorf("flow: need a warm-up and a duration (got %v, %v)", spec.Warmup, spec.Duration)
	}
	pr, err := dialPair(ctx, env, spec)
	if err != nil {
		return nil, err
	}
	defer pr.close()
	r := &Result{Metrics: map[string]float64{}}
	if r.ServerBefore, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	k := startConsumer(fctx, pr.consumer, 0)
	pctx, stopProducer := context.WithCancel(fctx)
	defer stopProducer()
	t0 := time.Now()
	p := startProducer(pctx, pr, spec.Size, 0)

	var (
		prevP, prevR uint64
		prevT        = t0
	)
	sample := func(phase string) (ctl.Stats, error) {
		st, err := env.Control.Stats(ctx, false, nil)
		if err != nil {
			return st, err
		}
		now, acc, rec := time.Now(), p.accepted.Load(), k.received.Load()
		dt := now.Sub(prevT).Seconds()
		r.Series = append(r.Series, Sample{
			T: now.Sub(t0).Seconds(), Phase: phase,
			Produced: float64(acc-prevP) / dt, Received: float64(rec-prevR) / dt,
			Backlog: acc - min(acc, k.distinct.Load()), RSS: st.RSS, HeapStack: st.HeapStack,
		})
		prevP, prevR, prevT = acc, rec, now
		return st, nil
	}
	// run samples every second until d is over; a remainder shorter than
	// half a second joins the last sample, so that none is too short to
	// give a rate.
	run := func(phase string, d time.Duration) error {
		end := time.Now().Add(d)
		for rem := time.Until(end); rem > 0; rem = time.Until(end) {
			step := flowSample
			if rem < flowSample*3/2 {
				step = rem
			}
			if err := Sleep(ctx, step); err != nil {
				return err
			}
			if _, err := sample(phase); err != nil {
				return err
			}
		}
		return nil
	}

	env.Progress("  warm-up %v: the consumer reads flat out", spec.Warmup)
	d0 := k.distinct.Load()
	if err := run("warmup", spec.Warmup); err != nil {
		return nil, err
	}
	free := float64(k.distinct.Load()-d0) / time.Since(t0).Seconds()
	r.Metrics[MetricFreeRate] = free
	if spec.Consumer == "slow" {
		limit := free / max(spec.Slowdown, 1)
		if limit < 1 {
			// A result too (the sessions may have been cut throughout):
			// the consumer then reads one message a second.
			r.Notes = append(r.Notes, fmt.Sprintf("nothing was delivered over the %v warm-up: the slow consumer reads 1 msg/s", spec.Warmup))
			limit = 1
		}
		// A burst of 5 ms worth of messages: the limiter sleeps in
		// steps Go's timers can keep.
		k.limiter.Store(rate.NewLimiter(rate.Limit(limit), max(int(limit/200), 1)))
		env.Progress("  measuring %v: the consumer reads at %.0f msg/s (free rate %.0f ÷ %g)", spec.Duration, limit, free, spec.Slowdown)
	} else {
		env.Progress("  measuring %v: the consumer reads flat out", spec.Duration)
	}
	start := len(r.Series)
	st, err := env.Control.Stats(ctx, false, nil)
	if err != nil {
		return nil, err
	}
	r.WindowStart = st
	r.Metrics[MetricRSSStart] = float64(st.RSS)
	if err := run("measure", spec.Duration); err != nil {
		return nil, err
	}
	measured := r.Series[start:]
	if r.WindowEnd, err = env.Control.Stats(ctx, false, nil); err != nil {
		return nil, err
	}

	// The producer stops; the consumer drains flat out.
	stopProducer()
	<-p.done
	k.limiter.Store(nil)
	accepted := p.accepted.Load()
	tStop := time.Now()
	all := k.waitAll(ctx, accepted, spec.Settle)
	drained := time.Since(tStop)
	if !all {
		drained = time.Unix(0, k.lastAt.Load()).Sub(tStop)
	}
	if _, err := sample("drain"); err != nil {
		return nil, err
	}
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	stop()
	pr.close()
	<-k.done

	k.fill(r, accepted)
	pr.told(r)
	r.Metrics[MetricDrain] = max(drained.Seconds(), 0)
	// The converged rates: the last third of the measured window, each
	// sample weighted by its length.
	// (A sample's span starts at the one before it: the warm-up's last
	// for the first measured one.)
	var prod, cons, secs float64
	for i := start + len(measured) - max(len(measured)/3, 1); i < start+len(measured); i++ {
		dt := r.Series[i].T - r.Series[i-1].T
		prod += r.Series[i].Produced * dt
		cons += r.Series[i].Received * dt
		secs += dt
	}
	r.Metrics[MetricProducer] = prod / secs
	r.Metrics[MetricConsumer] = cons / secs
	for _, s := range r.Series {
		r.Metrics[MetricRSSMax] = max(r.Metrics[MetricRSSMax], float64(s.RSS))
		r.Metrics[MetricHeapMax] = max(r.Metrics[MetricHeapMax], float64(s.HeapStack))
	}
	r.Metrics[MetricRate] = r.Metrics[MetricConsumer]
	if !all {
		r.Notes = append(r.Notes, fmt.Sprintf("incomplete: %d of %d accepted delivered, nothing more for %v", k.distinct.Load(), accepted, spec.Settle))
	}
	if p.err != nil {
		r.Notes = append(r.Notes, "producer: "+p.err.Error())
	}
	return r, nil
}

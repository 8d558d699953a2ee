package scenario

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/profile"
)

// Metrics of relay and flow.
const (
	MetricWall       = "wall_s"          // relay: first Send to last message received
	MetricDelivered  = "delivered"       // distinct messages received
	MetricLostMsgs   = "lost"            // accepted by the producer's Send, never received
	MetricDuplicated = "duplicated"      // received more than once
	MetricReordered  = "reordered"       // received after a later one
	MetricCuts       = "cuts"            // streams cut under either session (it resumed)
	MetricGapsTold   = "reported_lost"   // messages the sessions were told were lost
	MetricSendFailed = "send_failed"     // messages reported to the producer as never handled
	MetricFreeRate   = "free_rate"       // flow: delivered msg/s over the warm-up
	MetricProducer   = "producer_rate"   // flow: producer's accepted msg/s, last third of the window
	MetricConsumer   = "consumer_rate"   // flow: consumer's msg/s over the same span
	MetricRSSMax     = "server_rss_max"  // flow: largest server VmRSS read, bytes
	MetricHeapMax    = "server_heap_max" // flow: largest server HeapInuse+StackInuse read (no GC), bytes
	MetricRSSStart   = "server_rss_start"
	MetricDrain      = "drain_s" // flow: producer stopped → last message received
)

// relayKind marks a relayed payload: kind, seq (8 bytes, big endian),
// padding.
const relayKind byte = 'R'

// relayPayload returns message seq of size bytes (at least 9).
func relayPayload(seq uint64, size int) []byte {
	b := make([]byte, max(size, 9))
	b[0] = relayKind
	binary.BigEndian.PutUint64(b[1:], seq)
	return b
}

// observer counts what a session is told about its own delivery
// (system.Observer), and keeps the first few distinct reasons.
type observer struct {
	cuts, gaps, failed atomic.Uint64

	mu      sync.Mutex
	reasons []string
}

const maxReasons = 4

func (o *observer) note(why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reasons) < maxReasons && !slices.Contains(o.reasons, why) {
		o.reasons = append(o.reasons, why)
	}
}

func (o *observer) Cut(why string)        { o.cuts.Add(1); o.note("cut: " + why) }
func (o *observer) Gap(n uint64)          { o.gaps.Add(n) }
func (o *observer) SendFailed(why string) { o.failed.Add(1); o.note("send failed: " + why) }

// pair is relay's and flow's two sessions: the producer sends to the
// consumer's client id, through the server.
type pair struct {
	producer, consumer system.Client
	relayer            system.Relayer
	consumerID         string
	obsP, obsC         observer
}

// dialPair opens the producer and the consumer, each on its own
// connection, with observers.
func dialPair(ctx context.Context, env Env, spec Spec) (*pair, error) {
	p, err := profile.Lookup(spec.Profile)
	if err != nil {
		return nil, err
	}
	pr := &pair{}
	nonce := time.Now().UnixNano()
	pid := fmt.Sprintf("bench-%s-%d-producer", env.System.Name, nonce)
	pr.consumerID = fmt.Sprintf("bench-%s-%d-consumer", env.System.Name, nonce)
	dial := func(addr, id string, obs *observer) (system.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return env.System.Dial(dctx, addr, system.ClientOptions{ID: id, Profile: p, Observer: obs})
	}
	if pr.consumer, err = dial(env.Addr, pr.consumerID, &pr.obsC); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	paddr := env.Addr
	if spec.Across {
		paddr = env.node(1)
	}
	if pr.producer, err = dial(paddr, pid, &pr.obsP); err != nil {
		_ = pr.consumer.Close()
		return nil, fmt.Errorf("producer: %w", err)
	}
	var ok bool
	if pr.relayer, ok = pr.producer.(system.Relayer); !ok {
		pr.close()
		return nil, fmt.Errorf("system %s cannot address a session by client id (no system.Relayer)", env.System.Name)
	}
	return pr, nil
}

func (pr *pair) close() { closeAll([]system.Client{pr.producer, pr.consumer}) }

// told fills the metrics of what the sessions were told, and the notes.
func (pr *pair) told(r *Result) {
	r.Metrics[MetricCuts] = float64(pr.obsP.cuts.Load() + pr.obsC.cuts.Load())
	r.Metrics[MetricGapsTold] = float64(pr.obsP.gaps.Load() + pr.obsC.gaps.Load())
	r.Metrics[MetricSendFailed] = float64(pr.obsP.failed.Load())
	for _, o := range []struct {
		who string
		obs *observer
	}{{"producer", &pr.obsP}, {"consumer", &pr.obsC}} {
		o.obs.mu.Lock()
		for _, why := range o.obs.reasons {
			r.Notes = append(r.Notes, o.who+" "+why)
		}
		o.obs.mu.Unlock()
	}
}

// producer sends relayPayloads 1, 2, … to the consumer until limit (0: no
// limit) or ctx ends; accepted is the last seq its Send accepted.
type producer struct {
	accepted atomic.Uint64
	err      error // why it stopped before limit, other than ctx
	done     chan struct{}
}

func startProducer(ctx context.Context, pr *pair, size int, limit uint64) *producer {
	p := &producer{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for seq := uint64(1); (limit == 0 || seq <= limit) && ctx.Err() == nil; seq++ {
			if err := pr.relayer.SendTo(ctx, pr.consumerID, relayPayload(seq, size)); err != nil {
				if ctx.Err() == nil {
					p.err = err
				}
				return
			}
			p.accepted.Store(seq)
		}
	}()
	return p
}

// consumer receives relayPayloads, optionally paced by a limiter, and
// checks them: counts per seq, duplicates and reordering.
type consumer struct {
	c       system.Client
	limiter atomic.Pointer[rate.Limiter]

	received atomic.Uint64 // every relayPayload, duplicates included
	distinct atomic.Uint64
	lastAt   atomic.Int64  // unix ns of the last distinct message
	target   atomic.Uint64 // distinct count at which reached closes
	reached  chan struct{}
	once     sync.Once
	done     chan struct{}

	// Owned by the receiving goroutine until done.
	counts          []uint8
	dup, reordered  uint64
	highest, others uint64
}

func startConsumer(ctx context.Context, c system.Client, target uint64) *consumer {
	k := &consumer{c: c, reached: make(chan struct{}), done: make(chan struct{})}
	k.target.Store(target)
	go k.run(ctx)
	return k
}

func (k *consumer) run(ctx context.Context) {
	defer close(k.done)
	for {
		b, err := k.c.Recv(ctx)
		if err != nil {
			return
		}
		if len(b) < 9 || b[0] != relayKind {
			k.others++
			continue
		}
		if l := k.limiter.Load(); l != nil {
			if l.Wait(ctx) != nil {
				return
			}
		}
		seq := binary.BigEndian.Uint64(b[1:])
		k.received.Add(1)
		for uint64(len(k.counts)) <= seq {
			k.counts = append(k.counts, make([]uint8, max(len(k.counts), 1<<16))...)
		}
		if k.counts[seq] > 0 {
			k.dup++
			continue
		}
		k.counts[seq] = 1
		if seq < k.highest {
			k.reordered++
		}
		k.highest = max(k.highest, seq)
		k.lastAt.Store(time.Now().UnixNano())
		k.check(k.distinct.Add(1))
	}
}

func (k *consumer) check(distinct uint64) {
	if t := k.target.Load(); t > 0 && distinct >= t {
		k.once.Do(func() { close(k.reached) })
	}
}

// waitAll waits until n distinct messages arrived, or none arrived for
// settle; it reports whether all did.
func (k *consumer) waitAll(ctx context.Context, n uint64, settle time.Duration) bool {
	k.target.Store(n)
	k.check(k.distinct.Load())
	progress, last := k.distinct.Load(), time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-k.reached:
			return true
		case <-ctx.Done():
			return false
		case <-tick.C:
			if d := k.distinct.Load(); d != progress {
				progress, last = d, time.Now()
			} else if time.Since(last) > settle {
				return false
			}
		}
	}
}

// fill fills the delivery metrics against the producer's accepted count;
// call it once the consumer's goroutine has ended.
func (k *consumer) fill(r *Result, accepted uint64) {
	var delivered, lost uint64
	for seq := uint64(1); seq <= accepted; seq++ {
		if seq < uint64(len(k.counts)) && k.counts[seq] > 0 {
			delivered++
		} else {
			lost++
		}
	}
	r.Metrics[MetricDelivered] = float64(delivered)
	r.Metrics[MetricLostMsgs] = float64(lost)
	r.Metrics[MetricDuplicated] = float64(k.dup)
	r.Metrics[MetricReordered] = float64(k.reordered)
	if k.others > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("consumer: %d other messages", k.others))
	}
}

// relay is the "Done when" case of issue 15: the producer sends Count
// messages of Size bytes flat out to the consumer's client id, the
// consumer receives in a tight loop; wall time from the first Send to the
// last message, every message checked (lost, duplicated, reordered) and
// the sessions' cuts counted. Settle bounds a wait without progress.
func relay(ctx context.Context, env Env, spec Spec) (*Result, error) {
	if spec.Count < 1 {
		return nil, fmt.Errorf("relay: need messages (got %d)", spec.Count)
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
	n := uint64(spec.Count)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	k := startConsumer(rctx, pr.consumer, n)
	s0, err := env.Control.Stats(ctx, false, nil)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	p := startProducer(rctx, pr, spec.Size, n)
	env.Progress("  relaying %d messages", n)
	all := k.waitAll(ctx, n, spec.Settle)
	end := time.Now()
	if !all {
		end = time.Unix(0, k.lastAt.Load())
	}
	s1, err := env.Control.Stats(ctx, false, nil)
	if err != nil {
		return nil, err
	}
	r.WindowStart, r.WindowEnd = s0, s1
	if r.ServerAfter, err = env.Control.Stats(ctx, true, nil); err != nil {
		return nil, err
	}
	stop()
	pr.close()
	<-p.done
	<-k.done
	wall := end.Sub(t0)
	r.Metrics[MetricWall] = wall.Seconds()
	k.fill(r, p.accepted.Load())
	r.Metrics[MetricRate] = r.Metrics[MetricDelivered] / wall.Seconds()
	r.Metrics[MetricCPUPerMsg] = float64((s1.CPU - s0.CPU).Microseconds()) / max(r.Metrics[MetricDelivered], 1)
	pr.told(r)
	if !all {
		r.Notes = append(r.Notes, fmt.Sprintf("incomplete: %d of %d delivered, nothing more for %v", k.distinct.Load(), n, spec.Settle))
	}
	if p.err != nil {
		r.Notes = append(r.Notes, "producer: "+p.err.Error())
	}
	if accepted := p.accepted.Load(); accepted < n {
		r.Notes = append(r.Notes, fmt.Sprintf("producer: %d of %d accepted by Send", accepted, n))
	}
	return r, nil
}

package scenario

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherhq/tether/bench/internal/ctl"
	"github.com/tetherhq/tether/bench/internal/system"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hub is an in-process system for the relay and flow scenarios: a client
// id's inbox is a channel of cap messages, so that a producer blocks, as on
// a flow-controlled stream, while its consumer does not read. script, when
// set, replaces what the consumer of a relay receives.
type hub struct {
	cap int

	mu     sync.Mutex
	inbox  map[string]chan []byte
	script [][]byte
}

func (h *hub) box(id string) chan []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inbox[id] == nil {
		h.inbox[id] = make(chan []byte, h.cap)
	}
	return h.inbox[id]
}

func (h *hub) system() system.System {
	return system.System{Name: "hub", Dial: func(_ context.Context, _ string, o system.ClientOptions) (system.Client, error) {
		return &hubClient{h: h, id: o.ID, in: h.box(o.ID), closed: make(chan struct{})}, nil
	}}
}

type hubClient struct {
	h      *hub
	id     string
	in     chan []byte
	once   sync.Once
	closed chan struct{}
}

var errHubClosed = errors.New("hub: closed")

func (c *hubClient) Send(context.Context, []byte) error { return nil }

func (c *hubClient) SendTo(ctx context.Context, id string, payload []byte) error {
	c.h.mu.Lock()
	script := c.h.script
	c.h.mu.Unlock()
	if script != nil {
		return nil // the consumer's messages are scripted
	}
	select {
	case c.h.box(id) <- payload:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return errHubClosed
	}
}

func (c *hubClient) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closed:
		return nil, errHubClosed
	}
}

func (c *hubClient) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// testEnv serves a control endpoint for env, on a listener closed when the
// test ends.
func testEnv(t *testing.T, sys system.System) Env {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := ctl.Serve(lis, func() any { return nil }, make(chan struct{}, 1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	})
	return Env{System: sys, Addr: "hub", Control: ctl.NewClient(lis.Addr().String())}
}

func TestRelayPayload(t *testing.T) {
	t.Parallel()
	b := relayPayload(42, 64)
	if len(b) != 64 || b[0] != relayKind || binary.BigEndian.Uint64(b[1:]) != 42 {
		t.Fatalf("relayPayload(42, 64) = %v", b)
	}
	if b := relayPayload(1, 3); len(b) != 9 {
		t.Fatalf("relayPayload(1, 3) has %d bytes, want the 9 of kind and seq", len(b))
	}
}

// TestConsumerChecks feeds a consumer a scripted delivery with a
// duplicate, a reordering and a missing message.
func TestConsumerChecks(t *testing.T) {
	t.Parallel()
	h := &hub{cap: 16, inbox: map[string]chan []byte{}}
	c, _ := h.system().Dial(context.Background(), "", system.ClientOptions{ID: "c"})
	for _, seq := range []uint64{1, 2, 2, 4, 3} {
		h.box("c") <- relayPayload(seq, 16)
	}
	h.box("c") <- []byte("other")
	k := startConsumer(context.Background(), c, 0)
	if k.waitAll(context.Background(), 4, 5*time.Second) != true {
		t.Fatalf("4 distinct messages not seen: %d", k.distinct.Load())
	}
	_ = c.Close()
	<-k.done
	r := &Result{Metrics: map[string]float64{}}
	k.fill(r, 5) // the producer's Send accepted 5
	want := map[string]float64{MetricDelivered: 4, MetricLostMsgs: 1, MetricDuplicated: 1, MetricReordered: 1}
	for m, v := range want {
		if r.Metrics[m] != v {
			t.Errorf("%s = %v, want %v (all: %v)", m, r.Metrics[m], v, r.Metrics)
		}
	}
	if len(r.Notes) != 1 {
		t.Errorf("notes %q, want one about the other message", r.Notes)
	}
}

func TestWaitAllGivesUpWithoutProgress(t *testing.T) {
	t.Parallel()
	h := &hub{cap: 4, inbox: map[string]chan []byte{}}
	c, _ := h.system().Dial(context.Background(), "", system.ClientOptions{ID: "c"})
	defer c.Close()
	h.box("c") <- relayPayload(1, 16)
	k := startConsumer(context.Background(), c, 0)
	start := time.Now()
	if k.waitAll(context.Background(), 2, 100*time.Millisecond) {
		t.Fatal("waitAll reported 2 messages; 1 was sent")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waitAll took %v to give up after 100ms without progress", d)
	}
	_ = c.Close()
	<-k.done
}

func TestRelay(t *testing.T) {
	t.Parallel()
	h := &hub{cap: 64, inbox: map[string]chan []byte{}}
	r, err := Run(context.Background(), testEnv(t, h.system()), Spec{
		Scenario: "relay", Case: "relay", Profile: "default", Size: 64, Count: 2000, Settle: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for m, v := range map[string]float64{MetricDelivered: 2000, MetricLostMsgs: 0, MetricDuplicated: 0, MetricReordered: 0, MetricCuts: 0} {
		if r.Metrics[m] != v {
			t.Errorf("%s = %v, want %v (all: %v)", m, r.Metrics[m], v, r.Metrics)
		}
	}
	if r.Metrics[MetricWall] <= 0 || r.Metrics[MetricRate] <= 0 {
		t.Errorf("wall time and rate must be positive: %v", r.Metrics)
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes on a complete relay: %q", r.Notes)
	}
}

func TestRelayReportsAnIncompleteRun(t *testing.T) {
	t.Parallel()
	// The consumer gets 1, 3 and 3 again, whatever the producer sends:
	// 2, 4 and 5 are lost.
	h := &hub{cap: 8, inbox: map[string]chan []byte{}}
	h.script = [][]byte{relayPayload(1, 16), relayPayload(3, 16), relayPayload(3, 16)}
	sys := h.system()
	dial := sys.Dial
	sys.Dial = func(ctx context.Context, addr string, o system.ClientOptions) (system.Client, error) {
		c, err := dial(ctx, addr, o)
		if err == nil && strings.HasSuffix(o.ID, "-consumer") {
			for _, b := range h.script {
				h.box(o.ID) <- b
			}
			o.Observer.Cut("scripted")
			o.Observer.Gap(2)
		}
		return c, err
	}
	r, err := Run(context.Background(), testEnv(t, sys), Spec{
		Scenario: "relay", Case: "relay", Profile: "default", Size: 16, Count: 5, Settle: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for m, v := range map[string]float64{MetricDelivered: 2, MetricLostMsgs: 3, MetricDuplicated: 1, MetricCuts: 1, MetricGapsTold: 2} {
		if r.Metrics[m] != v {
			t.Errorf("%s = %v, want %v (all: %v)", m, r.Metrics[m], v, r.Metrics)
		}
	}
	if len(r.Notes) < 2 {
		t.Errorf("notes %q: want the cut and the incomplete run", r.Notes)
	}
}

// TestFlowSlowConsumer runs flow against the hub with a consumer 2×
// slower than the free rate: nothing is lost or duplicated, the consumer
// keeps to its limit, and the producer, blocked by the full inbox, is never
// further ahead than the inbox.
func TestFlowSlowConsumer(t *testing.T) {
	t.Parallel()
	h := &hub{cap: 256, inbox: map[string]chan []byte{}}
	r, err := Run(context.Background(), testEnv(t, h.system()), Spec{
		Scenario: "flow", Case: "flow", Profile: "default", Size: 64, Consumer: "slow", Slowdown: 2,
		Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond, Settle: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for m, v := range map[string]float64{MetricLostMsgs: 0, MetricDuplicated: 0, MetricReordered: 0} {
		if r.Metrics[m] != v {
			t.Errorf("%s = %v, want %v (all: %v)", m, r.Metrics[m], v, r.Metrics)
		}
	}
	free, cons, prod := r.Metrics[MetricFreeRate], r.Metrics[MetricConsumer], r.Metrics[MetricProducer]
	if free <= 0 || r.Metrics[MetricDelivered] <= 0 {
		t.Fatalf("nothing measured: %v", r.Metrics)
	}
	// The limiter never lets the consumer go faster than its rate (plus a
	// 5 ms burst per one-second sample).
	if cons > free/2*1.1 {
		t.Errorf("consumer at %.0f msg/s, above its limit of %.0f (free rate %.0f ÷ 2)", cons, free/2, free)
	}
	// The producer is never further ahead than the inbox, plus the
	// message the consumer holds while its limiter waits.
	for _, smp := range r.Series {
		if smp.Backlog > uint64(h.cap)+1 {
			t.Errorf("backlog %d at %.2fs: more than the %d-message inbox (producer %.0f, consumer %.0f msg/s)", smp.Backlog, smp.T, h.cap, prod, cons)
		}
	}
	phases := map[string]int{}
	for _, s := range r.Series {
		phases[s.Phase]++
	}
	if phases["warmup"] == 0 || phases["measure"] == 0 || phases["drain"] != 1 {
		t.Errorf("series phases %v: want warm-up, measured seconds and one drain reading", phases)
	}
}

func TestFlowRefusesAnUnknownConsumer(t *testing.T) {
	t.Parallel()
	h := &hub{cap: 1, inbox: map[string]chan []byte{}}
	_, err := Run(context.Background(), testEnv(t, h.system()), Spec{Scenario: "flow", Consumer: "fast", Warmup: time.Second, Duration: time.Second})
	if err == nil {
		t.Fatal("flow ran with consumer \"fast\"")
	}
}

func TestSendWaitNeedsAWaiter(t *testing.T) {
	t.Parallel()
	h := &hub{cap: 1, inbox: map[string]chan []byte{}}
	_, err := Run(context.Background(), testEnv(t, h.system()), Spec{Scenario: "sendwait", Profile: "default", Count: 1})
	if err == nil {
		t.Fatal("sendwait ran on a system without system.Waiter")
	}
}

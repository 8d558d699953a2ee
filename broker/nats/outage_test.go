package nats_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// errLog keeps the errors of broker calls that do not match
// broker.ErrUnavailable: during an outage every failure must.
type errLog struct {
	mu    sync.Mutex
	calls atomic.Int64
	fails atomic.Int64
	bad   []error
}

func (l *errLog) note(what string, err error) {
	l.calls.Add(1)
	if err == nil {
		return
	}
	l.fails.Add(1)
	if errors.Is(err, broker.ErrUnavailable) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) < 10 {
		l.bad = append(l.bad, fmt.Errorf("%s: %w", what, err))
	}
}

// healthLog records a broker's health reports.
type healthLog struct {
	mu      sync.Mutex
	reports []error
	changed chan struct{}
}

func watchHealth(b *natsbroker.Broker) *healthLog {
	h := &healthLog{changed: make(chan struct{}, 1)}
	b.NotifyHealth(func(err error) {
		h.mu.Lock()
		h.reports = append(h.reports, err)
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
	})
	return h
}

// await waits, within 30s, for a report that ok accepts, after the first
// `after` reports.
func (h *healthLog) await(t *testing.T, after int, what string, ok func(error) bool) int {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		for i := after; i < len(h.reports); i++ {
			if ok(h.reports[i]) {
				h.mu.Unlock()
				return i + 1
			}
		}
		got := append([]error(nil), h.reports...)
		h.mu.Unlock()
		select {
		case <-h.changed:
		case <-deadline:
			t.Fatalf("the broker never reported %s; reports: %v", what, got)
		}
	}
}

// TestKillNATSServerUnderLoad kills, in a NATS cluster with replicas 3,
// the server a node uses (the JetStream meta leader, so that JetStream
// elects another) while the node and another one publish to each other's
// sessions, append to and trim logs and record idempotency keys. The node
// must not panic, must report itself unhealthy and then healthy, every call
// that fails meanwhile must fail with an error matching
// broker.ErrUnavailable, and calls must succeed again once the node has
// reconnected.
func TestKillNATSServerUnderLoad(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	var leader *natstest.Server
	for _, s := range servers {
		if s.Server().JetStreamIsLeader() {
			leader = s
		}
	}
	if leader == nil {
		t.Fatal("no JetStream meta leader")
	}
	urls := leader.URL() + "," + natstest.ClusterURLs(servers)
	prefix := newPrefix()
	o := natsbroker.Options{Prefix: prefix, Replicas: 3, Timeout: 2 * time.Second, Heartbeat: 500 * time.Millisecond, Logger: quiet()}
	open := func(id string, opts ...nats.Option) (*natsbroker.Broker, *logReceiver) {
		b, err := natsbroker.Connect(urls, o, opts...)
		if err != nil {
			t.Fatal(err)
		}
		r := &logReceiver{b: b, got: make(map[string]int)}
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Start(t.Context(), id, r); err != nil {
			t.Fatal(err)
		}
		return b, r
	}
	a, ra := open("A", nats.DontRandomize()) // on the leader
	b, _ := open("B")
	if got := a.Conn().ConnectedUrl(); got != leader.URL() {
		t.Fatalf("node A is on %s, want the leader %s", got, leader.URL())
	}
	health := watchHealth(a)
	ctx := t.Context()
	const sessions = 8
	for i := range sessions {
		id := "s" + strconv.Itoa(i)
		must(t, a.PutSession(ctx, broker.SessionRecord{ID: id, Node: "A"}))
		must(t, a.Bind(ctx, broker.Session(id)))
	}

	var errs errLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	load := func(what string, f func(i int) error) {
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				errs.note(what, f(i))
			}
		})
	}
	load("B publishes to A's sessions", func(i int) error {
		_, err := b.Publish(ctx, &broker.Message{Target: broker.Session("s" + strconv.Itoa(i%sessions)), Payload: []byte("b" + strconv.Itoa(i))})
		return err
	})
	load("A records keys", func(i int) error {
		_, err := a.Seen(ctx, "scope", "k"+strconv.Itoa(i), time.Minute)
		return err
	})
	load("A trims and reads logs", func(i int) error {
		l := a.Log("s" + strconv.Itoa(i%sessions))
		// Never past the seqs A's receiver assigned: it would append
		// below the trim, and its appends would fail.
		ra.mu.Lock()
		upTo := min(uint64(i), ra.seq)
		ra.mu.Unlock()
		if err := l.Trim(ctx, upTo); err != nil {
			return err
		}
		return l.Read(ctx, 0, func(broker.Entry) bool { return true })
	})
	load("A reads records", func(i int) error {
		_, _, err := a.GetSession(ctx, "s"+strconv.Itoa(i%sessions))
		return err
	})

	reports := health.await(t, 0, "healthy before the kill", func(err error) bool { return err == nil })
	leader.Shutdown()
	reports = health.await(t, reports, "unhealthy", func(err error) bool { return err != nil })
	health.await(t, reports, "healthy again", func(err error) bool { return err == nil })

	// Calls succeed again within a bound once the node has reconnected.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, perr := b.Publish(ctx, &broker.Message{Target: broker.Session("s0"), Payload: []byte("after")})
		_, serr := a.Seen(ctx, "scope", "after-"+strconv.FormatInt(time.Now().UnixNano(), 10), time.Minute)
		gerr := a.PutSession(ctx, broker.SessionRecord{ID: "s0", Node: "A"})
		if perr == nil && serr == nil && gerr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail 30s after the reconnect: Publish %v, Seen %v, PutSession %v", perr, serr, gerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d calls under load, %d failed, all retryable unless listed", errs.calls.Load(), errs.fails.Load())
	for _, err := range errs.bad {
		t.Errorf("a call failed with an error that does not match broker.ErrUnavailable: %v", err)
	}
	for _, n := range []*natsbroker.Broker{a, b} {
		if p := counter(t, n, "tether_nats_broker_panics_total"); p != 0 {
			t.Errorf("the broker recovered from %v panics", p)
		}
	}
}

// TestNATSDownCallsFailFast stops the only NATS server: every call that
// needs it fails at once (well before Timeout) with an error matching
// broker.ErrUnavailable, and works again once NATS is back.
func TestNATSDownCallsFailFast(t *testing.T) {
	srv := natstest.Start(t)
	o := natsbroker.Options{Prefix: newPrefix(), Timeout: time.Minute, Logger: quiet()}
	a, _ := nodeWith(t, srv.URL(), o, "A")
	health := watchHealth(a)
	ctx := t.Context()
	must(t, a.PutSession(ctx, broker.SessionRecord{ID: "s1", ClientID: "c1", Node: "A"}))
	must(t, a.Bind(ctx, broker.Session("s1")))
	if _, err := a.Log("s1").Append(ctx, broker.Entry{Seq: 1, Message: &broker.Message{Target: broker.Session("s1")}}, 10); err != nil {
		t.Fatal(err)
	}
	reports := health.await(t, 0, "healthy", func(err error) bool { return err == nil })
	srv.Shutdown()
	reports = health.await(t, reports, "unhealthy", func(err error) bool { return err != nil })

	calls := map[string]func() error{
		"Publish to a session held elsewhere": func() error {
			_, err := a.Publish(ctx, &broker.Message{Target: broker.Session("s2"), Payload: []byte("x")})
			return err
		},
		"Publish to a topic": func() error {
			_, err := a.Publish(ctx, &broker.Message{Target: broker.Topic("t"), Payload: []byte("x")})
			return err
		},
		"Seen": func() error {
			_, err := a.Seen(ctx, "scope", "key", time.Minute)
			return err
		},
		"Forget":     func() error { return a.Forget(ctx, "scope", "key") },
		"PutSession": func() error { return a.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A"}) },
		"GetSession": func() error {
			_, _, err := a.GetSession(ctx, "s1")
			return err
		},
		"DeleteSession": func() error { return a.DeleteSession(ctx, "s9") },
		"Evict":         func() error { return a.Evict(ctx, broker.Eviction{Session: "s2", Node: "A"}) },
		"Append": func() error {
			_, err := a.Log("s1").Append(ctx, broker.Entry{Seq: 2, Message: &broker.Message{Target: broker.Session("s1")}}, 10)
			return err
		},
		"Read elsewhere": func() error { return a.Log("s3").Read(ctx, 0, func(broker.Entry) bool { return true }) },
		"Delete":         func() error { return a.Log("s4").Delete(ctx) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		t.Logf("%s while NATS is down: %v after %v", name, err, time.Since(start))
		if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while NATS is down = %v; want an error matching broker.ErrUnavailable at once", name, err)
		}
	}
	// A Bind while NATS is down succeeds: the node delivers what was
	// parked for the address once it is back.
	if err := a.Bind(ctx, broker.Session("s5")); err != nil {
		t.Errorf("Bind while NATS is down = %v; want nil", err)
	}

	srv.Restart(t)
	health.await(t, reports, "healthy again", func(err error) bool { return err == nil })
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := a.Seen(ctx, "scope", "key-after", time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Seen still fails 30s after NATS came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJetStreamWithoutQuorum leaves a node's NATS cluster with one server
// of three: NATS works but JetStream has no quorum, so recreating the
// streams after the reconnect fails until a second server is back. Calls
// that need JetStream fail with errors matching broker.ErrUnavailable (no
// missing stream handle, no panic), and all works again, the node healthy,
// once JetStream has a quorum.
func TestJetStreamWithoutQuorum(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	urls := servers[2].URL() + "," + natstest.ClusterURLs(servers)
	o := natsbroker.Options{Prefix: newPrefix(), Replicas: 3, Timeout: time.Second, Logger: quiet()}
	b, err := natsbroker.Connect(urls, o, nats.DontRandomize())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	r := &logReceiver{b: b, got: make(map[string]int)}
	if err := b.Start(t.Context(), "A", r); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	must(t, b.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A"}))
	must(t, b.Bind(ctx, broker.Session("s1")))
	health := watchHealth(b)
	reports := health.await(t, 0, "healthy", func(err error) bool { return err == nil })

	servers[2].Shutdown() // the node's server
	servers[1].Shutdown()
	reports = health.await(t, reports, "unhealthy", func(err error) bool { return err != nil })
	// Back on servers[0], alone: the calls that need JetStream fail, and
	// say so in a way a server can answer with a retry.
	for deadline := time.Now().Add(10 * time.Second); !b.Conn().IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not reconnect to the remaining server")
		}
	}
	// JetStream notices the lost quorum within seconds: until then a
	// write may still succeed. Every failure must be retryable.
	failed := false
	for i := 0; !failed; i++ {
		_, err := b.Seen(ctx, "scope", "k"+strconv.Itoa(i), time.Minute)
		if err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("Seen without a JetStream quorum = %v; want an error matching broker.ErrUnavailable", err)
		}
		failed = err != nil
		// A read may still be served by the remaining replica.
		if _, _, err := b.GetSession(ctx, "s1"); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("GetSession without a JetStream quorum = %v; want nil or an error matching broker.ErrUnavailable", err)
		}
		if _, err := b.Log("s1").Append(ctx, broker.Entry{Seq: uint64(i + 1), Message: &broker.Message{Target: broker.Session("s1")}}, 10); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("Append without a JetStream quorum = %v; want nil or an error matching broker.ErrUnavailable", err)
		}
		if i == 300 {
			t.Fatal("JetStream still takes writes without a quorum after 300 tries")
		}
	}

	servers[1].Restart(t)
	health.await(t, reports, "healthy again", func(err error) bool { return err == nil })
	// Each stream elects its own leader, soon after.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := b.Seen(ctx, "scope", "after-"+strconv.FormatInt(time.Now().UnixNano(), 10), time.Minute)
		if err == nil {
			break
		}
		if !errors.Is(err, broker.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Seen once JetStream has a quorum again: %v", err)
		}
	}
	if p := counter(t, b, "tether_nats_broker_panics_total"); p != 0 {
		t.Errorf("the broker recovered from %v panics", p)
	}
}

// counter returns the value of b's counter name.
func counter(t *testing.T, b *natsbroker.Broker, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("the broker exports no %s", name)
	return 0
}

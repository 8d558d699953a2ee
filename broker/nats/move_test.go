package nats_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// These tests move an address from node A to node B while A's route is
// still lame (see lameDuck): A answers "lame", never for B.

// logReceiver counts deliveries by payload and logs session messages, as a
// server does.
type logReceiver struct {
	b     *natsbroker.Broker
	mu    sync.Mutex
	got   map[string]int
	seq   uint64
	evict func(e broker.Eviction) error
	// delivered, if set, runs after each delivery, outside r.mu.
	delivered func(m *broker.Message)
	// refuse, if set, makes Deliver take m nowhere (return 0) when true.
	refuse func(m *broker.Message) bool
}

func (r *logReceiver) Deliver(m *broker.Message) (int, error) {
	if r.refuse != nil && r.refuse(m) {
		return 0, nil
	}
	if r.delivered != nil {
		defer r.delivered(m)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[string(m.Payload)]++
	r.seq++
	if _, err := r.b.Log(m.Target.Name).Append(context.Background(), broker.Entry{Seq: r.seq, Message: m}, 1000); err != nil {
		return 0, nil
	}
	return 1, nil
}

func (r *logReceiver) Evict(e broker.Eviction) error {
	if r.evict != nil {
		return r.evict(e)
	}
	return nil
}

func (r *logReceiver) count(p string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[p]
}

func moveNode(t *testing.T, url, prefix, id string) (*natsbroker.Broker, *logReceiver) {
	t.Helper()
	return nodeWith(t, url, natsbroker.Options{Prefix: prefix, MemoryStorage: true, Logger: quiet()}, id)
}

// nodeWith starts broker node id on url with o and a logReceiver.
func nodeWith(t *testing.T, url string, o natsbroker.Options, id string) (*natsbroker.Broker, *logReceiver) {
	t.Helper()
	b, err := natsbroker.Connect(url, o)
	if err != nil {
		t.Fatal(err)
	}
	r := &logReceiver{b: b, got: make(map[string]int)}
	if err := b.Start(t.Context(), id, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, r
}

// moveNodes starts nodes with the given ids on a NATS server of their own.
func moveNodes(t *testing.T, ids ...string) ([]*natsbroker.Broker, []*logReceiver) {
	t.Helper()
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	var bs []*natsbroker.Broker
	var rs []*logReceiver
	for _, id := range ids {
		b, r := moveNode(t, url, prefix, id)
		bs, rs = append(bs, b), append(rs, r)
	}
	return bs, rs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A publish right after a move reaches the new holder once: the lame old
// holder's answer does not make the publisher park a second copy.
func TestMoveNoDuplicate(t *testing.T) {
	ctx := t.Context()
	bs, rs := moveNodes(t, "A", "B", "P")
	a, b, p, ra, rb := bs[0], bs[1], bs[2], rs[0], rs[1]
	must(t, a.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A"}))
	must(t, a.Bind(ctx, broker.Session("s1")))
	must(t, a.Unbind(ctx, broker.Session("s1")))
	must(t, b.Bind(ctx, broker.Session("s1")))
	for i := range 20 {
		if n, err := p.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte(strconv.Itoa(i))}); n != 1 || err != nil {
			t.Fatalf("Publish %d = %d, %v", i, n, err)
		}
	}
	// Ordered behind the others: once it is in, so is any late copy.
	if n, err := p.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("fence")}); n != 1 || err != nil {
		t.Fatalf("Publish fence = %d, %v", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); rb.count("fence") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fence never reached B")
		}
	}
	for i := range 20 {
		if c, ca := rb.count(strconv.Itoa(i)), ra.count(strconv.Itoa(i)); c != 1 || ca != 0 {
			t.Errorf("message %d delivered %d times on B and %d on A; want once, on B", i, c, ca)
		}
	}
}

// Evict waits for the live holder, not the lame one.
func TestMoveEvictWaitsForTheHolder(t *testing.T) {
	ctx := t.Context()
	bs, rs := moveNodes(t, "A", "B", "C")
	a, b, c, rb := bs[0], bs[1], bs[2], rs[1]
	released := make(chan struct{})
	rb.evict = func(broker.Eviction) error {
		time.Sleep(100 * time.Millisecond) // releasing takes a moment
		close(released)
		return nil
	}
	must(t, a.Bind(ctx, broker.Session("s1")))
	must(t, a.Unbind(ctx, broker.Session("s1")))
	must(t, b.Bind(ctx, broker.Session("s1")))
	must(t, c.Evict(ctx, broker.Eviction{Session: "s1", Node: "C"}))
	select {
	case <-released:
	default:
		t.Error("Evict returned before the holder B released the session")
	}
}

// A lame node's answer does not hide the live holder's refusal.
func TestMoveForeignClient(t *testing.T) {
	ctx := t.Context()
	bs, rs := moveNodes(t, "A", "B", "C")
	a, b, c, rb := bs[0], bs[1], bs[2], rs[1]
	rb.evict = func(broker.Eviction) error {
		time.Sleep(20 * time.Millisecond)
		return broker.ErrForeignClient
	}
	must(t, a.Bind(ctx, broker.Client("c1")))
	must(t, a.Unbind(ctx, broker.Client("c1")))
	must(t, b.Bind(ctx, broker.Client("c1")))
	if err := c.Evict(ctx, broker.Eviction{Client: "c1", Principal: "mallory", By: "x", Node: "C"}); !errors.Is(err, broker.ErrForeignClient) {
		t.Errorf("Evict = %v, want ErrForeignClient (B holds c1 for another principal)", err)
	}
}

// A node that was lame and binds again delivers at once.
func TestMoveBack(t *testing.T) {
	ctx := t.Context()
	bs, rs := moveNodes(t, "A", "P")
	a, p, ra := bs[0], bs[1], rs[0]
	must(t, a.Bind(ctx, broker.Session("s1")))
	must(t, a.Unbind(ctx, broker.Session("s1")))
	must(t, a.Bind(ctx, broker.Session("s1")))
	if n, err := p.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("x")}); n != 1 || err != nil || ra.count("x") != 1 {
		t.Fatalf("Publish after a re-bind = %d, %v; A has it %d times", n, err, ra.count("x"))
	}
}

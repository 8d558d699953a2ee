package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// scripted is a Handler that answers each payload with the next error
// scripted for it (nil once the script runs out) and lists the payloads it
// handled, in order. gate, when set, blocks the handling of the payload
// named hold until it is closed (after closing held).
type scripted struct {
	server.Router
	mu      sync.Mutex
	errs    map[string][]error
	handled []string
	hold    string
	held    chan struct{}
	gate    chan struct{}
}

func (h *scripted) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	p := string(m.Payload)
	if p == h.hold && h.gate != nil {
		close(h.held)
		<-h.gate
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if errs := h.errs[p]; len(errs) > 0 {
		h.errs[p] = errs[1:]
		if errs[0] != nil {
			return errs[0]
		}
	}
	h.handled = append(h.handled, p)
	return nil
}

func (h *scripted) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.handled...)
}

func keyed(seq uint64, payload, key string) *tetherv1.ConnectRequest {
	f := toTopic(seq, "t", payload)
	f.GetMessage().IdempotencyKey = key
	return f
}

// errorFrame waits for the next Error frame, skipping acks and messages.
func (c *conn) errorFrame() *tetherv1.Error {
	c.t.Helper()
	for {
		f := c.next()
		if e := f.GetError(); e != nil {
			return e
		}
		if f.GetAck() == nil && f.GetMessage() == nil {
			c.t.Fatalf("got %v, want an error", f)
		}
	}
}

// ackedTo waits until the server has acked seq (perhaps in an Ack that an
// earlier helper skipped), and fails if an ack goes beyond it.
func (c *conn) ackedTo(seq uint64) {
	c.t.Helper()
	for c.acked < seq {
		c.ackFrame()
	}
	if c.acked > seq {
		c.t.Fatalf("ack %d; want %d", c.acked, seq)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A message the route refuses for now (a retryable code) is not acked, and
// what the client sent behind it is dropped unread: re-sent from its seq,
// they are handled in order, once each.
func TestRefusedMessageIsResentInOrder(t *testing.T) {
	t.Parallel()
	h := &scripted{errs: map[string][]error{"2": {status.Error(codes.Unavailable, "broker down")}}}
	n := startNode(t, noMaxAge(), server.WithHandler(h))
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{})
	for i, p := range []string{"1", "2", "3"} {
		c.send(toTopic(uint64(i+1), "t", p))
	}
	e := c.errorFrame()
	if e.GetSeq() != 2 || codes.Code(e.GetCode()) != codes.Unavailable || !contains(e.GetMessage(), "re-send it") {
		t.Fatalf("error frame %v; want seq 2, UNAVAILABLE, telling to re-send", e)
	}
	c.ackedTo(1)
	c.send(toTopic(2, "t", "2"))
	c.send(toTopic(3, "t", "3"))
	c.ackedTo(3)
	if got := h.list(); !equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("handled %v; want [1 2 3]", got)
	}
}

// A message the route fails for good (NOT_FOUND) is reported with an Error
// frame and acked: the client knows, and does not re-send it.
func TestFailedMessageIsReportedAndAcked(t *testing.T) {
	t.Parallel()
	h := &scripted{errs: map[string][]error{"2": {status.Error(codes.NotFound, "no such client")}}}
	n := startNode(t, noMaxAge(), server.WithHandler(h))
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{})
	for i, p := range []string{"1", "2", "3"} {
		c.send(toTopic(uint64(i+1), "t", p))
	}
	if e := c.errorFrame(); e.GetSeq() != 2 || codes.Code(e.GetCode()) != codes.NotFound {
		t.Fatalf("error frame %v; want seq 2, NOT_FOUND", e)
	}
	c.ackedTo(3)
	if got := h.list(); !equal(got, []string{"1", "3"}) {
		t.Fatalf("handled %v; want [1 3]", got)
	}
}

// An idempotency key never outlives a failed delivery: the re-send of a
// refused or failed message with its key is handled, and only a handled
// message's key makes a repeat a duplicate.
func TestKeyOfUnhandledMessageIsNotKept(t *testing.T) {
	t.Parallel()
	h := &scripted{errs: map[string][]error{
		"a": {status.Error(codes.Unavailable, "broker down")},
		"b": {status.Error(codes.NotFound, "no such client")},
	}}
	n := startNode(t, noMaxAge(), server.WithHandler(h))
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "k"})
	c.send(keyed(1, "a", "ka"))
	if e := c.errorFrame(); e.GetSeq() != 1 {
		t.Fatalf("error frame %v; want seq 1", e)
	}
	c.send(keyed(1, "a", "ka")) // the re-send of the refused message
	c.send(keyed(2, "b", "kb")) // fails for good; its sender may retry it
	if e := c.errorFrame(); e.GetSeq() != 2 || codes.Code(e.GetCode()) != codes.NotFound {
		t.Fatalf("error frame %v; want seq 2, NOT_FOUND", e)
	}
	c.send(keyed(3, "b", "kb")) // the application's retry, under a new seq
	c.send(keyed(4, "a", "ka")) // a repeat of a handled message
	c.ackedTo(4)
	if got := h.list(); !equal(got, []string{"a", "b"}) {
		t.Fatalf("handled %v; want [a b]", got)
	}
}

// A message being handled when its stream breaks is handled to the end: the
// client's re-send after the resume is a duplicate, acked and not handled
// again.
func TestMessageHandledAcrossStreamReset(t *testing.T) {
	t.Parallel()
	h := &scripted{hold: "1", held: make(chan struct{}), gate: make(chan struct{})}
	n := startNode(t, noMaxAge(), server.WithHandler(h))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "r"})
	c.send(keyed(1, "1", "k1"))
	<-h.held
	c.close() // the stream breaks while message 1 is being handled
	c2 := n.dial(t, "")
	c2.send(hello(rvResume(w.GetSessionId(), w.GetResumeToken(), 0)))
	close(h.gate)
	if w2 := c2.next().GetWelcome(); !w2.GetResumed() {
		t.Fatalf("resume: %v", w2)
	}
	c2.send(keyed(1, "1", "k1")) // re-sent: the client saw no ack
	c2.send(keyed(2, "2", "k2"))
	c2.ackedTo(2)
	if got := h.list(); !equal(got, []string{"1", "2"}) {
		t.Fatalf("handled %v; want [1 2]", got)
	}
}

// A message delivered twice through the broker with one dedupe key (its
// sender re-sent it after a node died before answering) reaches the
// session once.
func TestSecondCopyOfAMessageIsDropped(t *testing.T) {
	t.Parallel()
	b := memory.New()
	n := startNode(t, noMaxAge(), server.WithBroker(b))
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "r"})
	for _, p := range []string{"x", "x", "y"} {
		m := &broker.Message{Target: broker.Client("r"), Payload: []byte(p), DedupeKey: "publish\x00" + p}
		if got, err := b.Publish(context.Background(), m); err != nil || got != 1 {
			t.Fatalf("Publish %s = %d, %v; want 1 (a dropped copy counts as reached)", p, got, err)
		}
	}
	if m := c.message(); string(m.GetPayload()) != "x" || m.GetSeq() != 1 {
		t.Fatalf("first message %v; want x, seq 1", m)
	}
	if m := c.message(); string(m.GetPayload()) != "y" || m.GetSeq() != 2 {
		t.Fatalf("second message %v; want y, seq 2 (the copy of x dropped)", m)
	}
}

// sick is a memory broker that reports itself broken, through
// broker.HealthNotifier, until healed.
type sick struct {
	*memory.Broker
	mu     sync.Mutex
	notify func(error)
}

func (b *sick) NotifyHealth(f func(error)) {
	b.mu.Lock()
	b.notify = f
	b.mu.Unlock()
	f(nil)
}

func (b *sick) report(err error) {
	b.mu.Lock()
	f := b.notify
	b.mu.Unlock()
	f(err)
}

// While the broker does not work, a client message is refused at once
// (the stream stays), and the re-send after it works again is handled.
func TestMessageRefusedWhileBrokerDown(t *testing.T) {
	t.Parallel()
	b := &sick{Broker: memory.New()}
	h := &scripted{}
	n := startNode(t, noMaxAge(), server.WithBroker(b), server.WithHandler(h))
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{})
	b.report(errors.New("NATS unreachable"))
	c.send(toTopic(1, "t", "1"))
	c.send(toTopic(2, "t", "2"))
	if e := c.errorFrame(); e.GetSeq() != 1 || codes.Code(e.GetCode()) != codes.Unavailable || !contains(e.GetMessage(), "broker is unreachable") {
		t.Fatalf("error frame %v; want seq 1, UNAVAILABLE, the broker is unreachable", e)
	}
	b.report(nil)
	c.send(toTopic(1, "t", "1"))
	c.send(toTopic(2, "t", "2"))
	c.ackedTo(2)
	if got := h.list(); !equal(got, []string{"1", "2"}) {
		t.Fatalf("handled %v; want [1 2]", got)
	}
}

// The idempotency key of a message that failed (Error frame) is not kept:
// the retry the Error invited is delivered.
func TestFailedMessageDoesNotBurnItsIdempotencyKey(t *testing.T) {
	t.Parallel()
	n := startNode(t, noMaxAge())
	a := n.dial(t, "")
	a.open(&tetherv1.Hello{ClientId: "a"})
	send := func(seq uint64) {
		a.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: seq, Target: &tetherv1.ClientMessage_ClientId{ClientId: "b"}, IdempotencyKey: "order-42", Payload: []byte("p")}}})
	}
	send(1) // b is not connected yet: NOT_FOUND
	if f := a.next(); f.GetError() == nil {
		t.Fatalf("want an Error frame, got %v", f)
	}
	b := n.dial(t, "")
	b.open(&tetherv1.Hello{ClientId: "b"})
	send(2) // the retry the Error invited
	done := make(chan *tetherv1.ServerMessage, 1)
	go func() {
		select {
		case f, ok := <-b.frames:
			if ok {
				done <- f.GetMessage()
			}
		case <-time.After(time.Second):
		}
		close(done)
	}()
	if m := <-done; m == nil {
		t.Fatalf("retry after a failed delivery was dropped as a duplicate; b never got it")
	}
}

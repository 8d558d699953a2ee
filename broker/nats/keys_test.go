package nats_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/server"
)

// These tests break a node while it handles a client message with an
// idempotency key, and resume the session on another node: the re-sent
// message must be handled there exactly once, whether the first node
// delivered it or not.

// gated is a server.Handler that holds the message with payload "x" until
// gate is closed, and then fails it as if its node had died before
// delivering it (fail), or hands it to next.
type gated struct {
	next *recorder
	held chan struct{}
	gate chan struct{}
	fail bool
}

func (g *gated) OnConnect(ctx context.Context, s *server.Session) error { return nil }
func (g *gated) OnClose(s *server.Session, reason string)               {}

func (g *gated) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	if string(m.Payload) == "x" {
		close(g.held)
		<-g.gate
		if g.fail {
			return status.Error(codes.Unavailable, "the node died")
		}
	}
	return g.next.OnMessage(ctx, s, m)
}

// stub is a raw Connect stream, as a generated stub drives it.
type stub struct {
	t      *testing.T
	s      tetherv1.TetherService_ConnectClient
	cancel context.CancelFunc
}

func dialStub(t *testing.T, addr string) *stub {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &stub{t: t, s: s, cancel: cancel}
}

func (c *stub) send(f *tetherv1.ConnectRequest) {
	c.t.Helper()
	if err := c.s.Send(f); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// welcome sends Hello h and returns the Welcome.
func (c *stub) welcome(h *tetherv1.Hello) *tetherv1.Welcome {
	c.t.Helper()
	w, err := c.hello(h)
	if err != nil {
		c.t.Fatalf("want welcome, got %v", err)
	}
	return w
}

func (c *stub) hello(h *tetherv1.Hello) (*tetherv1.Welcome, error) {
	h.HeartbeatInterval = durationpb.New(time.Minute)
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: h}})
	f, err := c.s.Recv()
	if err == nil && f.GetWelcome() == nil {
		c.t.Fatalf("want welcome, got %v", f)
	}
	return f.GetWelcome(), err
}

// resume resumes session w on addr, retrying while the server answers
// UNAVAILABLE (as the proto says to): a node that just died may still
// hold its NATS subscriptions for a moment, and the eviction sent to it
// times out.
func resume(t *testing.T, addr string, h *tetherv1.Hello) (*stub, *tetherv1.Welcome) {
	t.Helper()
	for try := 0; ; try++ {
		c := dialStub(t, addr)
		w, err := c.hello(h)
		if err == nil {
			return c, w
		}
		if status.Code(err) != codes.Unavailable || try == 5 {
			t.Fatalf("resume: %v", err)
		}
	}
}

// message sends client message seq to the recorder's topic.
func (c *stub) message(seq uint64, payload, key string) {
	c.t.Helper()
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: "in"}, Payload: []byte(payload), IdempotencyKey: key}}})
}

// acked waits for an Ack of seq; an Error frame first fails the test.
func (c *stub) acked(seq uint64) {
	c.t.Helper()
	for {
		f, err := c.s.Recv()
		if err != nil {
			c.t.Fatalf("waiting for ack %d: %v", seq, err)
		}
		if e := f.GetError(); e != nil {
			c.t.Fatalf("waiting for ack %d: error frame %v", seq, e)
		}
		if f.GetAck().GetSeq() >= seq {
			return
		}
	}
}

func TestKeyOfMessageHandledWhenItsNodeBroke(t *testing.T) {
	for _, tc := range []struct {
		name string
		// brk breaks node a (or its stream) while it holds the message.
		brk func(a *node, c *stub)
		// delivered says whether a delivered the message before breaking.
		delivered bool
	}{
		// The node dies before the message left it: nothing may be left
		// behind that makes the re-send a duplicate.
		{"NodeDiedBeforeDelivery", func(a *node, c *stub) { a.kill() }, false},
		// The client's stream breaks while the node delivers: the node
		// finishes, and records the key, so the re-send is a duplicate.
		{"StreamResetDuringDelivery", func(a *node, c *stub) { c.cancel() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := natstest.Start(t).URL()
			rec := newRecorder()
			g := &gated{next: rec, held: make(chan struct{}), gate: make(chan struct{}), fail: !tc.delivered}
			a := startNode(t, "a", url, 1, server.WithHandler(g))
			b := startNode(t, "b", url, 1, server.WithHandler(rec))

			c := dialStub(t, a.addr)
			w := c.welcome(&tetherv1.Hello{ClientId: "dev"})
			c.message(1, "x", "key-x")
			<-g.held
			tc.brk(a, c)
			close(g.gate)

			c2, w2 := resume(t, b.addr, &tetherv1.Hello{ClientId: "dev", Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w.GetResumeToken()}})
			if !w2.GetResumed() {
				t.Fatalf("resume on b: %v", w2.GetResumeStatus())
			}
			from := w2.GetLastReceivedSeq() + 1
			msgs := []string{"x", "y"}
			for seq := from; seq <= 2; seq++ {
				c2.message(seq, msgs[seq-1], "key-"+msgs[seq-1])
			}
			c2.acked(2)
			if total, dups, _ := rec.count(""); total != 2 || len(dups) != 0 {
				t.Fatalf("handled %d distinct messages (duplicated: %v); want x and y, once each", total, dups)
			}
		})
	}
}

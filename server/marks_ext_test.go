package server_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// markBroker is a NATS broker that counts the duplicate checks of client
// messages (Recorded) and, when held is set, hands the end of each key's
// record to the test instead of running it.
type markBroker struct {
	*natsbroker.Broker
	checks atomic.Int32
	held   chan func()
}

func (m *markBroker) Recorded(ctx context.Context, scope, key string) (bool, error) {
	m.checks.Add(1)
	return m.Broker.Recorded(ctx, scope, key)
}

func (m *markBroker) Record(scope, key string, window time.Duration, done func(error)) {
	if m.held == nil {
		m.Broker.Record(scope, key, window, done)
		return
	}
	m.Broker.Record(scope, key, window, func(err error) { m.held <- func() { done(err) } })
}

// markNode is a tether node on a markBroker of its own NATS connection,
// which the test may cut (nc.Close) to make the node vanish as a crash
// would.
type markNode struct {
	*node
	b  *markBroker
	nc *nats.Conn
}

func startMarkNode(t *testing.T, url, id string, b *markBroker, opts ...server.Option) *markNode {
	t.Helper()
	nc, err := nats.Connect(url, append(natsbroker.ConnectOptions("tether"), nats.NoEcho())...)
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	if b.Broker, err = natsbroker.New(nc, natsbroker.Options{}); err != nil {
		t.Fatalf("natsbroker.New: %v", err)
	}
	tn := tethertest.StartNode(t, nil, append([]server.Option{server.WithServerID(id), server.WithBroker(b), server.WithPrincipal(principalFromMD), noMaxAge()}, opts...)...)
	cc, err := grpc.NewClient(tn.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &markNode{node: &node{srv: tn.Server, addr: tn.Addr, cc: cc}, b: b, nc: nc}
}

// resumeRetrying opens a stream on n with h, again while the resume is
// refused with UNAVAILABLE (as a client retries it: just after a node's
// death, its subscriptions may still answer "no responders" to the
// eviction), and returns it with its Welcome.
func resumeRetrying(t *testing.T, n *node, h *tetherv1.Hello) (*conn, *tetherv1.Welcome) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		c := n.dial(t, "alice")
		c.send(hello(h))
		f, ok := <-c.frames
		if ok {
			if w := f.GetWelcome(); w != nil {
				return c, w
			}
			t.Fatalf("first frame %v, want a welcome", f)
		}
		err := <-c.err
		if statusCode(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("resume: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // a client's retry delay, not a wait for a condition
	}
}

// awaitAck waits for an Ack of exactly seq, failing on any other frame
// than a ping or a lower Ack.
func awaitAck(t *testing.T, c *conn, seq uint64) {
	t.Helper()
	for {
		a := c.next().GetAck()
		switch {
		case a == nil:
			t.Fatalf("got another frame while waiting for Ack %d", seq)
		case a.GetSeq() == seq:
			return
		case a.GetSeq() > seq:
			t.Fatalf("Ack %d, want %d: it covers a message whose key is not stored", a.GetSeq(), seq)
		}
	}
}

// noAck asserts that no Ack arrives for waitShort.
func noAck(t *testing.T, c *conn) {
	t.Helper()
	timer := time.NewTimer(waitShort)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("stream ended: %v", <-c.err)
			}
			if a := f.GetAck(); a != nil {
				t.Fatalf("Ack %d before the key of the message it covers was stored", a.GetSeq())
			}
		case <-timer.C:
			return
		}
	}
}

// With NATS, the reader records a handled message's receive mark without
// waiting for it, and the Ack that covers the message waits for it: an Ack
// never covers a message whose mark is on its way, whatever order the
// records end in.
func TestAckWaitsForTheMarkOfItsMessage(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n := startMarkNode(t, ns.URL(), "n1", &markBroker{held: make(chan func(), 16)})
	c := n.dial(t, "alice")
	c.open(&tetherv1.Hello{})

	c.send(toTopic(1, "t", "m1"))
	done1 := <-n.b.held
	noAck(t, c)
	done1()
	awaitAck(t, c, 1)

	c.send(toTopic(2, "t", "m2"))
	c.send(toTopic(3, "t", "m3"))
	done2, done3 := <-n.b.held, <-n.b.held
	done3()
	noAck(t, c) // 2's mark is still on its way
	done2()
	awaitAck(t, c, 3)
	if got := n.b.checks.Load(); got != 0 {
		t.Errorf("%d duplicate checks on a session that never moved; want 0 (its received seq drops re-sends)", got)
	}
}

// A session adopted from a node that died checks its client's messages for
// marks the dead node stored, until it finds one without: the re-sends of
// what the dead node handled are dropped, and after the first message it
// did not handle, nothing is checked any more. With pipelining, the
// pipeline's reach (maxPipelined, 1024) after it is checked too: a
// pipeline may have delivered, and marked, messages behind one it refused.
func TestAdoptedSessionChecksMarksUntilTheFirstUnmarked(t *testing.T) {
	t.Parallel()
	t.Run("no pipelining", func(t *testing.T) { testAdoptedChecks(t, 0, server.WithPipelining(false)) })
	t.Run("pipelining", func(t *testing.T) { testAdoptedChecks(t, 1024) })
}

// testAdoptedChecks runs TestAdoptedSessionChecksMarksUntilTheFirstUnmarked
// on nodes with opts, checking reach messages after the first unmarked.
func testAdoptedChecks(t *testing.T, reach uint64, opts ...server.Option) {
	t.Parallel()
	ns := natstest.Start(t)
	n1 := startMarkNode(t, ns.URL(), "n1", &markBroker{}, opts...)
	n2 := startMarkNode(t, ns.URL(), "n2", &markBroker{}, opts...)

	sub := n2.dial(t, "alice")
	sub.open(&tetherv1.Hello{Topics: []string{"t"}})
	c1 := n1.dial(t, "alice")
	w1 := c1.open(&tetherv1.Hello{})
	for seq := uint64(1); seq <= 3; seq++ {
		c1.send(toTopic(seq, "t", string(rune('0'+seq))))
	}
	awaitAck(t, c1, 3)
	if got := n1.b.checks.Load(); got != 0 {
		t.Fatalf("%d duplicate checks on a fresh session; want 0", got)
	}
	n1.nc.Close() // n1 dies

	c2, w2 := resumeRetrying(t, n2.node, rvResume(w1.GetSessionId(), w1.GetResumeToken(), 0))
	if !w2.GetResumed() || w2.GetLastReceivedSeq() != 0 {
		t.Fatalf("resume on n2: resumed %v, last received %d; want true, 0 (the record as n1 stored it at the open)", w2.GetResumed(), w2.GetLastReceivedSeq())
	}
	// The client missed the Acks of 2 and 3 and re-sends them, then more.
	for seq := uint64(2); seq <= 6; seq++ {
		c2.send(toTopic(seq, "t", string(rune('0'+seq))))
	}
	// More, past 4's reach (to a topic nobody reads).
	for seq := uint64(7); seq <= 4+reach+2; seq++ {
		c2.send(toTopic(seq, "u", "x"))
	}
	awaitAck(t, c2, max(6, 4+reach+2))
	if got := uint64(n2.b.checks.Load()); got != 3+reach {
		t.Errorf("%d duplicate checks after the adoption; want %d (2 and 3: handled by n1; 4: not, and the %d after it)", got, 3+reach, reach)
	}
	for want := '1'; want <= '6'; want++ {
		if got := string(sub.message().GetPayload()); got != string(want) {
			t.Fatalf("the subscriber got %q, want %q", got, string(want))
		}
	}
	sub.noFrame()
}

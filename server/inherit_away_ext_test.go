package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// natsNode is a tether node on a NATS broker of its own connection, which
// the test may cut (nc.Close) to make the node vanish as a crash would.
type natsNode struct {
	*node
	tn *tethertest.Node
	nc *nats.Conn
}

// startNATSNode starts node id, with opts, on the NATS server at url.
func startNATSNode(t *testing.T, url, id string, opts ...server.Option) *natsNode {
	t.Helper()
	return startNATSNodeWith(t, url, id, natsbroker.Options{}, opts...)
}

// startNATSNodeWith starts node id as startNATSNode does, with broker
// options o.
func startNATSNodeWith(t *testing.T, url, id string, o natsbroker.Options, opts ...server.Option) *natsNode {
	t.Helper()
	nc, err := nats.Connect(url, append(natsbroker.ConnectOptions("tether"), nats.NoEcho())...)
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	nb, err := natsbroker.New(nc, o)
	if err != nil {
		t.Fatalf("natsbroker.New: %v", err)
	}
	return startNodeOn(t, id, nb, nc, opts...)
}

// startNodeOn starts node id on broker b, whose NATS connection is nc.
func startNodeOn(t *testing.T, id string, b broker.Broker, nc *nats.Conn, opts ...server.Option) *natsNode {
	t.Helper()
	opts = append([]server.Option{server.WithServerID(id), server.WithBroker(b), server.WithPrincipal(principalFromMD), noMaxAge()}, opts...)
	tn := tethertest.StartNode(t, nil, opts...)
	cc, err := grpc.NewClient(tn.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &natsNode{node: &node{srv: tn.Server, addr: tn.Addr, cc: cc}, tn: tn, nc: nc}
}

// A client id taken over on another node, as the same principal, inherits
// the old session's undelivered messages as its first messages, in order,
// before anything newer, whether the old session's node is alive (it ends
// the session and keeps its log for the heir) or died (the heir finds its
// record and log in JetStream). Welcome.took_over says so exactly, and the
// messages are inherited once: the next takeover finds only the heir's.
func TestTakeoverAcrossNodesInheritsUndeliveredMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		zombie, died bool
	}{
		{name: "old node alive, old session detached"},
		{name: "old node alive, old stream still open", zombie: true},
		{name: "old node died", died: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := natstest.Start(t)
			n1, n2 := startNATSNode(t, ns.URL(), "n1"), startNATSNode(t, ns.URL(), "n2")

			c1 := n1.dial(t, "p")
			w1 := c1.open(&tetherv1.Hello{ClientId: "dev"})
			n2.publishTo(t, "dev", payloads(1, 5)...)
			c1.expectMessages(1, payloads(1, 5)...)
			c1.send(ack(2))
			waitFor(t, func() bool { return n1.info(t, w1.GetSessionId()).GetLastAckedSeq() == 2 })
			if !tc.zombie {
				c1.close()
				waitState(t, n1.node, w1.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
			}
			n2.publishTo(t, "dev", "m6", "m7") // in the old session's log, queued or sent
			if tc.died {
				n1.nc.Close() // gone from NATS at once, as a crash
				n1.tn.Kill()
			}
			// At the old session, or kept (parked) for the client id. Just
			// after the kill, n1 may still look subscribed: the route then
			// fails as "may or may not have arrived", and a publisher
			// retries with an idempotency key, as the error says.
			n2.publishRetrying(t, "dev", "m8")

			c2 := n2.dial(t, "p")
			w2 := c2.open(&tetherv1.Hello{ClientId: "dev"})
			took := w2.GetTookOver()
			want := uint64(6) // m3..m8
			if tc.died {
				want = 5 // m3..m7; m8 was parked, not in the log, and comes next
			}
			if took.GetSessionId() != w1.GetSessionId() || took.GetInherited() != want || took.GetDropped() != nil {
				t.Fatalf("took_over %v; want session %s, %d inherited, none dropped", took, w1.GetSessionId(), want)
			}
			if tc.zombie {
				// GoAway does not wait behind queued messages: the zombie
				// gets what its writer sent before it (all inherited too).
				c1.expectMessagesUntilTakenOver(6, "m6", "m7", "m8")
			}
			n2.publishTo(t, "dev", "m9")
			c2.expectMessages(1, payloads(3, 9)...)
			c2.send(ack(7))
			waitFor(t, func() bool { return n2.info(t, w2.GetSessionId()).GetLastAckedSeq() == 7 })

			// Inherited once: a later takeover finds the heir, all acked.
			third := n1.node
			if tc.died {
				third = n2.node
			}
			c := third.dial(t, "p")
			took = c.open(&tetherv1.Hello{ClientId: "dev"}).GetTookOver()
			if took.GetSessionId() != w2.GetSessionId() || took.GetInherited() != 0 || took.GetDropped() != nil {
				t.Fatalf("second takeover: took_over %v; want session %s, 0 inherited, none dropped", took, w2.GetSessionId())
			}
			n2.publishTo(t, "dev", "m10")
			c.expectMessages(1, "m10")
		})
	}
}

// A client whose resume failed but names the session taken over on another
// node holds its messages up to Resume.last_received_seq: the heir
// inherits only what came after.
func TestTakeoverAcrossNodesSkipsWhatTheFailedResumeHeld(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1, n2 := startNATSNode(t, ns.URL(), "n1"), startNATSNode(t, ns.URL(), "n2")
	c1 := n1.dial(t, "p")
	w1 := c1.open(&tetherv1.Hello{ClientId: "dev"})
	n1.publishTo(t, "dev", payloads(1, 6)...)
	c1.expectMessages(1, payloads(1, 6)...)
	c1.close()
	waitState(t, n1.node, w1.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)

	c2 := n2.dial(t, "p")
	openAfterStaleResume(t, c2, w1)
	n1.publishTo(t, "dev", "m7")
	c2.expectMessages(1, payloads(5, 7)...)
}

// Another principal's session of the client id, on another node, is
// neither taken over nor inherited from: PERMISSION_DENIED, and the old
// session keeps its messages.
func TestTakeoverAcrossNodesByAnotherPrincipalInheritsNothing(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1, n2 := startNATSNode(t, ns.URL(), "n1"), startNATSNode(t, ns.URL(), "n2")
	c1 := n1.dial(t, "alice")
	c1.open(&tetherv1.Hello{ClientId: "shared"})
	n2.publishTo(t, "shared", "for alice")
	c1.expectMessages(1, "for alice")
	c2 := n2.dial(t, "mallory")
	c2.send(hello(&tetherv1.Hello{ClientId: "shared"}))
	c2.expectEnd(codes.PermissionDenied, "belongs to a session of another principal")
	n2.publishTo(t, "shared", "still alice's")
	c1.expectMessages(2, "still alice's")
}

// What the old session on another node had already lost (its log
// overflowed) is not inherited: Welcome.took_over.dropped names it
// exactly, in the old session's seqs.
func TestTakeoverAcrossNodesReportsWhatWasDropped(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	opts := []server.Option{server.WithMaxOutboundQueue(3), server.WithOverflowPolicy(server.OverflowDropOldest)}
	n1, n2 := startNATSNode(t, ns.URL(), "n1", opts...), startNATSNode(t, ns.URL(), "n2", opts...)
	c1 := n1.dial(t, "p")
	w1 := c1.open(&tetherv1.Hello{ClientId: "small"})
	c1.close()
	waitState(t, n1.node, w1.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
	n1.publishTo(t, "small", payloads(1, 5)...) // the log keeps 3, 4, 5

	c2 := n2.dial(t, "p")
	took := c2.open(&tetherv1.Hello{ClientId: "small"}).GetTookOver()
	if took.GetSessionId() != w1.GetSessionId() || took.GetInherited() != 3 || took.GetDropped().GetFirst() != 1 || took.GetDropped().GetLast() != 2 {
		t.Fatalf("took_over %v; want session %s, 3 inherited, 1..2 dropped", took, w1.GetSessionId())
	}
	c2.expectMessages(1, payloads(3, 5)...)
}

// publishRetrying publishes payload to clientID with an idempotency key,
// again while the answer is UNAVAILABLE, for up to waitLong.
func (n *node) publishRetrying(t *testing.T, clientID, payload string) {
	t.Helper()
	req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: clientID}, Payload: []byte(payload),
		IdempotencyKey: "test/" + payload}
	deadline := time.Now().Add(waitLong)
	for {
		_, err := n.tether().Publish(context.Background(), req)
		if err == nil {
			return
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("Publish: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // a publisher's retry delay, not a wait for a condition
	}
}

// expectMessagesUntilTakenOver expects a prefix of want (from firstSeq),
// then GoAway{TAKEN_OVER} and the stream's end with ABORTED.
func (c *conn) expectMessagesUntilTakenOver(firstSeq uint64, want ...string) {
	c.t.Helper()
	for i := 0; ; {
		f := c.next()
		switch {
		case f.GetAck() != nil:
		case f.GetMessage() != nil && i < len(want):
			if m := f.GetMessage(); m.GetSeq() != firstSeq+uint64(i) || string(m.GetPayload()) != want[i] {
				c.t.Fatalf("message seq %d %q; want seq %d %q", m.GetSeq(), m.GetPayload(), firstSeq+uint64(i), want[i])
			}
			i++
		case f.GetGoAway().GetReason() == tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER:
			c.expectEnd(codes.Aborted, "taken over")
			return
		default:
			c.t.Fatalf("got %v; want messages %v from seq %d, then go_away TAKEN_OVER", f, want[i:], firstSeq+uint64(i))
		}
	}
}

package server_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
)

// gatedBroker is a NATS broker whose eviction of session id, the first
// thing an adoption writes after its claim, waits until gate is closed
// (if set); it counts those evictions.
type gatedBroker struct {
	*natsbroker.Broker
	id       string
	gate     chan struct{}
	evicting chan struct{} // closed as the first eviction of id begins
	once     sync.Once
	evicts   atomic.Int32
}

func (g *gatedBroker) Evict(ctx context.Context, e broker.Eviction) error {
	if e.Session == g.id {
		g.evicts.Add(1)
		g.once.Do(func() { close(g.evicting) })
		if g.gate != nil {
			<-g.gate
		}
	}
	return g.Broker.Evict(ctx, e)
}

// startGatedNode starts node id on the NATS server at url, its broker
// wrapped in g.
func startGatedNode(t *testing.T, url, id string, g *gatedBroker) *node {
	t.Helper()
	return startWrappedNode(t, url, id, func(b *natsbroker.Broker) broker.Broker {
		g.Broker = b
		return g
	}).node
}

// startWrappedNode starts node id on the NATS server at url, its broker
// the one wrap returns around a NATS broker of its own connection.
func startWrappedNode(t *testing.T, url, id string, wrap func(*natsbroker.Broker) broker.Broker) *natsNode {
	t.Helper()
	nc, err := nats.Connect(url, append(natsbroker.ConnectOptions("tether"), nats.NoEcho())...)
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	nb, err := natsbroker.New(nc, natsbroker.Options{})
	if err != nil {
		t.Fatalf("natsbroker.New: %v", err)
	}
	return startNodeOn(t, id, wrap(nb), nc)
}

// Two nodes resume one session at the same time, after its node died: the
// first to claim it adopts it, and the other refuses the resume with
// UNAVAILABLE before it writes anything of the session (it does not even
// evict). Once the first is done, the claim is released: a later resume on
// the other node takes the session over as usual.
func TestAdoptionIsFenced(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1 := startNATSNode(t, ns.URL(), "n1")
	c1 := n1.dial(t, "p")
	w1 := c1.open(&tetherv1.Hello{ClientId: "dev"})
	id, tok := w1.GetSessionId(), w1.GetResumeToken()
	n1.nc.Close() // gone from NATS at once, as a crash
	n1.tn.Kill()

	g2 := &gatedBroker{id: id, gate: make(chan struct{}), evicting: make(chan struct{})}
	g3 := &gatedBroker{id: id, evicting: make(chan struct{})}
	n2, n3 := startGatedNode(t, ns.URL(), "n2", g2), startGatedNode(t, ns.URL(), "n3", g3)

	c2 := n2.dial(t, "p")
	c2.send(hello(rvResume(id, tok, 0)))
	<-g2.evicting // n2 holds the claim, adopting

	c3 := n3.dial(t, "p")
	c3.send(hello(rvResume(id, tok, 0)))
	c3.expectEnd(codes.Unavailable, "is taking session")
	if n := g3.evicts.Load(); n != 0 {
		t.Errorf("the refused node evicted the session %d times; want it to write nothing", n)
	}
	if _, err := n3.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: id}); statusCode(err) != codes.NotFound {
		t.Errorf("GetSession on the refused node: %v, want NotFound", err)
	}

	close(g2.gate)
	if w := c2.next().GetWelcome(); !w.GetResumed() {
		t.Fatalf("the first node's resume: %v, want resumed", w)
	}

	// Released: the next resume elsewhere takes the session over.
	c3 = n3.dial(t, "p")
	if w := c3.open(rvResume(id, tok, 0)); !w.GetResumed() || w.GetServerId() != "n3" {
		t.Fatalf("a later resume on n3: %v, want resumed there", w)
	}
	c2.expectEnd(codes.Aborted, "resumed on another node")
}

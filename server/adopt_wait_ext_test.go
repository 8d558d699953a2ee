package server_test

import (
	"context"
	"testing"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
)

// bindGate is a NATS broker whose Bind of session id waits for gate to
// close (entered closes when it begins) and then fails if its context
// ended meanwhile, as a slow NATS flush that notices a canceled context
// does; and whose GetSession of id after the first signals looked.
type bindGate struct {
	*natsbroker.Broker
	id      string
	entered chan struct{}
	gate    chan struct{}
	gets    chan struct{}
}

func (b *bindGate) Bind(ctx context.Context, a broker.Address) error {
	if a == broker.Session(b.id) {
		close(b.entered)
		<-b.gate
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return b.Broker.Bind(ctx, a)
}

func (b *bindGate) GetSession(ctx context.Context, id string) (broker.SessionRecord, bool, error) {
	rec, ok, err := b.Broker.GetSession(ctx, id)
	if id == b.id {
		select {
		case b.gets <- struct{}{}:
		default:
		}
	}
	return rec, ok, err
}

// A resume that gives up while its node takes the session over from
// another (the client's stream ends, as a client's connect timeout under a
// mass failover does) does not cut the takeover short, and the client's
// next resume, on the same node, waits for it: it gets the session bound
// to this node, and what is published to it next arrives. (A takeover cut
// short by the first stream unbound the session the second had attached
// meanwhile: connected, but no longer reachable, its messages parked for
// good; tether-bench nodes lost hundreds in a 10,000-session failover on
// a three-server cluster.)
func TestResumeWaitsForATakeoverInProgress(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a := startNATSNode(t, ns.URL(), "a")
	c := a.dial(t, "p")
	w := c.open(&tetherv1.Hello{ClientId: "dev"})
	id := w.GetSessionId()
	c.close()

	gb := &bindGate{id: id, entered: make(chan struct{}), gate: make(chan struct{}), gets: make(chan struct{}, 1)}
	b := startWrappedNode(t, ns.URL(), "b", func(nb *natsbroker.Broker) broker.Broker {
		gb.Broker = nb
		return gb
	})

	first := b.dial(t, "p")
	first.send(hello(rvResume(id, w.GetResumeToken(), 0)))
	<-gb.entered // the takeover is binding the session on b
	<-gb.gets    // the first resume's read of the record
	first.close()

	second := b.dial(t, "p")
	second.send(hello(rvResume(id, w.GetResumeToken(), 0)))
	<-gb.gets // the second resume found the record
	close(gb.gate)
	w2 := second.next().GetWelcome()
	if !w2.GetResumed() || w2.GetSessionId() != id {
		t.Fatalf("second resume: %v; want session %s resumed", w2, id)
	}
	a.publishTo(t, "dev", "after")
	second.expectMessages(1, "after")
}

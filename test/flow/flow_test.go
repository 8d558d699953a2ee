package flow_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// These tests are issue 15's scenario, run as a new user would: one
// default server, two stock SDK sessions; A sends flat out to B's client
// id with Send, B calls Receive in a loop. Every message must arrive once,
// in order, with no cut (no reconnect) and no gap, however much faster A
// is than B.

const (
	relayMessages = 20_000
	payloadSize   = 64
)

// payload is message i: its index, big-endian, padded to payloadSize.
func payload(i int) []byte {
	p := make([]byte, payloadSize)
	binary.BigEndian.PutUint64(p, uint64(i))
	return p
}

// watch records what a session's application would be told: every state
// change, so that a cut (a reconnect) or a reported loss fails the test.
type watch struct {
	mu      sync.Mutex
	name    string
	changes []client.StateChange
}

func (w *watch) add(c client.StateChange) {
	w.mu.Lock()
	w.changes = append(w.changes, c)
	w.mu.Unlock()
}

// check fails t for each reconnect and each reported loss.
func (w *watch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		switch {
		case c.State == client.StateReconnecting:
			t.Errorf("session %s was cut: %v", w.name, c.Err)
		case c.Lost != nil:
			t.Errorf("session %s was told messages %d..%d are lost", w.name, c.Lost.First, c.Lost.Last)
		}
	}
}

// open starts a session named name (its client id too) with the stock
// defaults plus extra, and closes it when the test ends.
func open(t *testing.T, name string, extra ...client.Option) (*client.Session, *watch) {
	t.Helper()
	w := &watch{name: name}
	opts := append([]client.Option{client.WithClientID(name), client.WithOnState(w.add)}, extra...)
	s, err := client.New(opts...)
	if err != nil {
		t.Fatalf("client.New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Connect(t.Context()); err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	return s, w
}

// relay sends relayMessages from a to client id "b" with Send, while b
// receives; pause, if not nil, is called by the receiver after each
// message it took. It fails t unless every message arrives once, in order.
func relay(t *testing.T, ctx context.Context, a, b *client.Session, pause func(i int)) {
	t.Helper()
	sent := make(chan error, 1)
	go func() {
		for i := range relayMessages {
			if err := a.Send(ctx, client.Message{ClientID: "b", Payload: payload(i)}); err != nil {
				sent <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		sent <- nil
	}()
	for i := range relayMessages {
		m, err := b.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive after %d of %d messages: %v", i, relayMessages, err)
		}
		if got := int(binary.BigEndian.Uint64(m.Payload)); got != i {
			t.Fatalf("message %d arrived where %d was due: want each once, in order", got, i)
		}
		if pause != nil {
			pause(i)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// TestFlatOutOneNode is the scenario on a default server with the memory
// broker, over TCP on loopback.
func TestFlatOutOneNode(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	b, wb := open(t, "b", client.WithAddrs(addr))
	a, wa := open(t, "a", client.WithAddrs(addr))
	relay(t, ctx, a, b, nil)
	wa.check(t)
	wb.check(t)
}

// TestConsumerPausesFiveSeconds is the scenario with a consumer that stops
// reading for 5 s after a quarter of the messages, then goes on: the
// producer is held back (its sends wait or are refused and retried), and
// nothing is lost or cut. It runs in a synctest bubble, over bufconn, so
// the 5 s are fake.
func TestConsumerPausesFiveSeconds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, lis := tethertest.ServeBufconn(t)
		dial := []client.Option{
			client.WithAddrs("passthrough:///bufnet"),
			client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))),
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		b, wb := open(t, "b", dial...)
		a, wa := open(t, "a", dial...)
		relay(t, ctx, a, b, func(i int) {
			if i == relayMessages/4 {
				time.Sleep(5 * time.Second) // fake time: the consumer stops reading
			}
		})
		wa.check(t)
		wb.check(t)
	})
}

// TestFlatOutAcrossNATSNodes is the scenario on two nodes sharing an
// embedded NATS server: A on one, B on the other.
func TestFlatOutAcrossNATSNodes(t *testing.T) {
	t.Parallel()
	relayAcrossNATS(t, nil)
}

// TestConsumerPausesAcrossNATSNodes is TestConsumerPausesFiveSeconds on two
// NATS nodes, in real time (NATS runs outside any bubble), with a pause of
// two seconds: B's log fills while A's messages stream through the NATS
// broker's pipeline, the one refused as full takes those behind it down
// with it, and A's SDK re-sends them; each must arrive once, in order.
func TestConsumerPausesAcrossNATSNodes(t *testing.T) {
	t.Parallel()
	relayAcrossNATS(t, func(i int) {
		if i == relayMessages/4 {
			time.Sleep(2 * time.Second) // the consumer stops reading: the load's shape, not a wait for an event
		}
	})
}

// relayAcrossNATS runs relay from A on one NATS node to B on another, B
// calling pause (if not nil) after each message, and fails t on any cut
// or reported loss.
func relayAcrossNATS(t *testing.T, pause func(i int)) {
	t.Helper()
	addr1, addr2 := twoNATSNodes(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b, wb := open(t, "b", client.WithAddrs(addr2))
	a, wa := open(t, "a", client.WithAddrs(addr1))
	relay(t, ctx, a, b, pause)
	wa.check(t)
	wb.check(t)
}

// twoNATSNodes starts two default nodes, n1 and n2, sharing an embedded
// NATS server, and returns their addresses.
func twoNATSNodes(t *testing.T) (string, string) {
	t.Helper()
	ns := natstest.Start(t)
	node := func(id string) string {
		nb, err := natsbroker.Connect(ns.URL(), natsbroker.Options{})
		if err != nil {
			t.Fatalf("natsbroker.Connect: %v", err)
		}
		return tethertest.StartNode(t, nil, server.WithServerID(id), server.WithBroker(nb)).Addr
	}
	return node("n1"), node("n2")
}

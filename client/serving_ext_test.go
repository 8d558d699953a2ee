package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// switchable is an in-memory broker that the test can take down, as a NATS
// broker cut off from NATS: its server then reports NOT_SERVING, and
// registering a session fails.
type switchable struct {
	broker.Broker

	mu     sync.Mutex
	down   error
	notify func(error)
}

func newSwitchable(down error) *switchable { return &switchable{Broker: memory.New(), down: down} }

func (b *switchable) NotifyHealth(f func(error)) {
	b.mu.Lock()
	b.notify = f
	err := b.down
	b.mu.Unlock()
	f(err)
}

func (b *switchable) set(down error) {
	b.mu.Lock()
	b.down = down
	f := b.notify
	b.mu.Unlock()
	if f != nil {
		f(down)
	}
}

func (b *switchable) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.down
}

func (b *switchable) Bind(ctx context.Context, addr broker.Address) error {
	if err := b.err(); err != nil {
		return err
	}
	return b.Broker.Bind(ctx, addr)
}

// TestServingHealthEndsTheWait starts a session while both backends are
// down (NOT_SERVING, and opening a session there fails), with a backoff
// whose first wait is a random time below an hour. When one backend turns
// SERVING, the waiting session connects to it at once (within the
// half-second jitter), not when its backoff ends.
func TestServingHealthEndsTheWait(t *testing.T) {
	t.Parallel()
	errDown := errors.New("nats: no servers available")
	ba, bb := newSwitchable(errDown), newSwitchable(errDown)
	a := tethertest.StartNode(t, nil, server.WithBroker(ba))
	b := tethertest.StartNode(t, nil, server.WithBroker(bb))
	log := newStateLog()
	s := newSession(t, client.WithAddrs(a.Addr, b.Addr), client.WithClientID("waiting"), log.option(),
		client.WithBackoff(backoff.Config{Base: time.Hour, Cap: time.Hour, Multiplier: 2, ResetAfter: 5 * time.Second}))
	ctx := ctxT(t)
	go s.Connect(ctx) //nolint:errcheck // the test watches the states
	log.await(t, 0, waitLong, "a failed first attempt", func(c client.StateChange) bool { return c.State == client.StateReconnecting })

	ready := time.Now()
	bb.set(nil)
	_, c := log.await(t, 0, waitLong, "a connection", func(c client.StateChange) bool { return c.State == client.StateConnected })
	back := c.Time.Sub(ready)
	t.Logf("connected to the backend %v after it turned SERVING", back.Round(time.Millisecond))
	if c.Backend != b.Addr {
		t.Fatalf("connected to %s, want %s, the one that turned SERVING", c.Backend, b.Addr)
	}
	if back > 2*time.Second {
		t.Fatalf("connected %v after the backend turned SERVING; want within 2s", back)
	}
}

// serveAt starts a tether server on addr (a port a killed node used).
func serveAt(t *testing.T, addr string) {
	t.Helper()
	srv, err := server.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s again: %v", addr, err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
		_ = srv.Close()
	})
}

// TestRestartedNodeIsUsedAtOnce kills both backends of a session whose
// backoff waits a random time below an hour, then restarts one on its old
// port: the session's health watch reaches it again (its connection
// redials within a second) and the session connects without waiting out
// its backoff.
func TestRestartedNodeIsUsedAtOnce(t *testing.T) {
	t.Parallel()
	a := tethertest.StartNode(t, nil)
	b := tethertest.StartNode(t, nil)
	log := newStateLog()
	s := newSession(t, client.WithAddrs(a.Addr, b.Addr), client.WithClientID("restart"), log.option(),
		client.WithBackoff(backoff.Config{Base: time.Hour, Cap: time.Hour, Multiplier: 2, ResetAfter: 5 * time.Second}))
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	a.Kill()
	b.Kill()
	// The stream broke: the session waits its backoff. Its health watches
	// broke with the connections, so the backends count as unreachable
	// before any new connection can answer.
	log.await(t, 0, waitLong, "the stream's end", isState(client.StateReconnecting))
	restarted := time.Now()
	serveAt(t, a.Addr)
	_, c := log.await(t, 0, waitLong, "a connection to the restarted node", func(c client.StateChange) bool {
		return c.State == client.StateConnected && c.Time.After(restarted)
	})
	back := c.Time.Sub(restarted)
	t.Logf("connected %v after the node restarted", back.Round(time.Millisecond))
	if back > 3*time.Second {
		t.Fatalf("connected %v after the node restarted; want within about 2s", back)
	}
}

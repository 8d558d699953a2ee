package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// Broker is what the tether nodes of a case share.
type Broker int

// The brokers a case runs on.
const (
	// Memory is one tether node with the in-memory broker: independent
	// memory nodes cannot route to each other, so a case has one.
	Memory Broker = iota
	// NATS is three tether nodes on one embedded NATS server, replicas 1.
	NATS
	// NATSCluster is three tether nodes on an embedded three-server NATS
	// cluster, replicas 3.
	NATSCluster
)

// String returns "memory", "nats" or "nats-r3".
func (b Broker) String() string {
	switch b {
	case Memory:
		return "memory"
	case NATS:
		return "nats"
	}
	return "nats-r3"
}

// nodes is how many tether nodes run on b.
func (b Broker) nodes() int {
	if b == Memory {
		return 1
	}
	return 3
}

// relistenTimeout bounds the wait for a restarted node's port, which the
// kernel may hold for a moment after the old listener closed.
const relistenTimeout = 5 * time.Second

// cluster is the system under test: the NATS servers (none for Memory),
// the tether nodes and a fault proxy in front of each node.
type cluster struct {
	tb      TB
	broker  Broker
	log     *slog.Logger
	drain   []server.Option // the nodes' drain settings, if not the defaults
	closing sync.WaitGroup  // killed nodes' servers, closing
	nats    []*natstest.Server
	urls    string
	nodes   []*node
	proxies []*faultproxy.Proxy
}

// startCluster starts the NATS servers b needs, b's tether nodes, and a
// fault proxy in front of each node; all are stopped when tb ends.
func startCluster(tb TB, b Broker, size Size, log *slog.Logger) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, broker: b, log: log}
	if size.DrainWindow > 0 {
		c.drain = []server.Option{server.WithDrain(size.DrainWindow, server.DefaultDrainRate, size.DrainJitter)}
	}
	switch b {
	case NATS:
		c.nats = []*natstest.Server{natstest.Start(tb)}
	case NATSCluster:
		c.nats = natstest.StartCluster(tb, 3)
	}
	c.urls = natstest.ClusterURLs(c.nats)
	tb.Cleanup(c.closing.Wait)
	for i := range b.nodes() {
		n := &node{id: "n" + strconv.Itoa(i+1), addr: "127.0.0.1:0", c: c}
		if err := n.start(); err != nil {
			tb.Fatalf("chaos: %v", err)
		}
		tb.Cleanup(n.kill)
		p, err := faultproxy.Start(n.addr)
		if err != nil {
			tb.Fatalf("chaos: proxy for node %s: %v", n.id, err)
		}
		tb.Cleanup(func() { _ = p.Close() })
		c.nodes = append(c.nodes, n)
		c.proxies = append(c.proxies, p)
	}
	return c
}

// proxyAddrs returns the proxies' addresses: where the sessions connect.
func (c *cluster) proxyAddrs() []string {
	out := make([]string, len(c.proxies))
	for i, p := range c.proxies {
		out[i] = p.Addr()
	}
	return out
}

// node returns the node whose server id is id, or nil.
func (c *cluster) node(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// node is one tether node: a server on its own broker client, served on a
// loopback port that it keeps across restarts.
type node struct {
	id   string
	addr string // "127.0.0.1:0" until the first start
	c    *cluster

	mu   sync.Mutex
	srv  *server.Server
	gs   *grpc.Server
	nb   *natsbroker.Broker // nil on Memory
	done chan struct{}      // closed when Serve returned; nil while down
}

// start starts the node on its address, with a new broker client.
func (n *node) start() error {
	lis, err := listen(n.addr)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.id, err)
	}
	var b broker.Broker
	var nb *natsbroker.Broker
	if n.c.broker == Memory {
		b = memory.New()
	} else {
		replicas := 1
		if n.c.broker == NATSCluster {
			replicas = 3
		}
		nb, err = natsbroker.Connect(n.c.urls, natsbroker.Options{Replicas: replicas, Logger: n.c.log.With("node", n.id, "from", "broker")})
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("node %s: %w", n.id, err)
		}
		b = nb
	}
	srv, err := server.New(append([]server.Option{
		server.WithServerID(n.id),
		server.WithBroker(b),
		server.WithProfile(profile.Datacenter()),
		server.WithLogger(n.c.log.With("node", n.id)),
	}, n.c.drain...)...)
	if err != nil {
		_ = lis.Close()
		_ = b.Close()
		return fmt.Errorf("node %s: %w", n.id, err)
	}
	if err := srv.Start(context.Background()); err != nil {
		_ = lis.Close()
		_ = srv.Close() // and the broker
		return fmt.Errorf("node %s: %w", n.id, err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	n.mu.Lock()
	n.addr, n.srv, n.gs, n.nb, n.done = lis.Addr().String(), srv, gs, nb, done
	n.mu.Unlock()
	return nil
}

// listen listens on addr, retrying for a bounded time while the port is
// still taken by the node's previous instance.
func listen(addr string) (net.Listener, error) {
	deadline := time.Now().Add(relistenTimeout)
	for {
		lis, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return lis, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopped takes the node's running parts and marks it down; ok is false
// when it was already down.
func (n *node) stopped() (srv *server.Server, gs *grpc.Server, nb *natsbroker.Broker, done chan struct{}, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return nil, nil, nil, nil, false
	}
	srv, gs, nb, done = n.srv, n.gs, n.nb, n.done
	n.srv, n.gs, n.nb, n.done = nil, nil, nil, nil
	return srv, gs, nb, done, true
}

// kill stops the node as kill -9 would: its NATS connection drops without
// a drain, then its connections, with no goodbye; nothing is handed over.
// Killing a node that is down does nothing. Once nothing of the node is
// reachable, its server is closed in the background (freeing memory, as
// the end of a process would): that can take the broker's timeout when
// its NATS connection is gone, and the node may start again meanwhile.
func (n *node) kill() {
	srv, gs, nb, done, ok := n.stopped()
	if !ok {
		return
	}
	if nb != nil {
		nb.Conn().Close()
	}
	gs.Stop()
	<-done
	n.c.closing.Go(func() { _ = srv.Close() })
}

// drain stops the node as SIGTERM does (see server.Server.Drain), within
// ctx.
func (n *node) drain(ctx context.Context) error {
	srv, _, _, done, ok := n.stopped()
	if !ok {
		return errors.New("node " + n.id + " is down")
	}
	err := srv.Drain(ctx)
	<-done
	return err
}

// server returns the running server, or nil while the node is down.
func (n *node) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// natsURL returns the URL of the NATS server the node is connected to,
// or "" (down, or on Memory).
func (n *node) natsURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nb == nil {
		return ""
	}
	return n.nb.Conn().ConnectedUrl()
}

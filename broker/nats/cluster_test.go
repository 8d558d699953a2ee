package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// node is one tether node of a test cluster: a server on a shared NATS
// broker, served on loopback.
type node struct {
	id   string
	srv  *server.Server
	gs   *grpc.Server
	b    *natsbroker.Broker
	addr string
	done chan struct{}
	once sync.Once
}

// startNode starts tether node id against the NATS servers at urls.
func startNode(t *testing.T, id, urls string, replicas int, opts ...server.Option) *node {
	t.Helper()
	b, err := natsbroker.Connect(urls, natsbroker.Options{Replicas: replicas, Timeout: 3 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	opts = append([]server.Option{
		server.WithServerID(id),
		server.WithBroker(b),
		server.WithProfile(profile.Datacenter()),
		server.WithLogger(quiet()),
	}, opts...)
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, srv: srv, gs: gs, b: b, addr: lis.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(n.kill)
	return n
}

// kill stops the node the hard way: its NATS connection is dropped
// without a drain, then its gRPC server, so nothing is handed over.
func (n *node) kill() {
	n.once.Do(func() {
		n.b.Conn().Close()
		n.gs.Stop()
		<-n.done
		_ = n.srv.Close()
	})
}

func quiet() *slog.Logger {
	if os.Getenv("TETHER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder is a server.Handler that routes like server.Router and counts
// the client messages it handles, on any node.
type recorder struct {
	server.Router
	mu      sync.Mutex
	handled map[string]int
	order   []string
}

func newRecorder() *recorder { return &recorder{handled: make(map[string]int)} }

func (r *recorder) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	if m.Target.Kind == broker.KindTopic && m.Target.Name == "in" {
		r.mu.Lock()
		r.handled[string(m.Payload)]++
		r.order = append(r.order, string(m.Payload))
		r.mu.Unlock()
		return nil
	}
	return r.Router.OnMessage(ctx, s, m)
}

func (r *recorder) count() (total int, dups []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, n := range r.handled {
		total++
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", k, n))
		}
	}
	return total, dups
}

func TestKillNodeMidStream(t *testing.T) {
	for _, nc := range []struct {
		name     string
		servers  int
		replicas int
	}{{"OneNATS", 1, 1}, {"NATSCluster", 3, 3}} {
		t.Run(nc.name, func(t *testing.T) {
			var urls string
			if nc.servers == 1 {
				urls = natstest.Start(t).URL()
			} else {
				urls = natstest.ClusterURLs(natstest.StartCluster(t, nc.servers))
			}
			rec := newRecorder()
			nodes := []*node{
				startNode(t, "n1", urls, nc.replicas, server.WithHandler(rec)),
				startNode(t, "n2", urls, nc.replicas, server.WithHandler(rec)),
				startNode(t, "n3", urls, nc.replicas, server.WithHandler(rec)),
			}
			testKillNode(t, nodes, rec)
		})
	}
}

func testKillNode(t *testing.T, nodes []*node, rec *recorder) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	states := make(chan client.StateChange, 64)
	cs, err := client.New(
		client.WithAddrs(nodes[0].addr, nodes[1].addr),
		client.WithClientID("dev1"),
		client.WithProfile(profile.Datacenter()),
		client.WithHeartbeat(time.Second),
		client.WithLogger(quiet()),
		client.WithOnState(func(c client.StateChange) {
			select {
			case states <- c:
			default:
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	if err := cs.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	first := awaitConnected(t, ctx, states)
	var victim, other *node
	for _, n := range nodes[:2] {
		if n.id == first.ServerID {
			victim = n
		} else {
			other = n
		}
	}
	if victim == nil {
		t.Fatalf("connected to %q, not to n1 or n2", first.ServerID)
	}
	publisher := nodes[2]

	const total = 400
	const killAt = 150
	received := make(chan string, total*2)
	go func() {
		for {
			m, err := cs.Receive(ctx)
			if err != nil {
				return
			}
			received <- string(m.Payload)
		}
	}()
	sendDone := make(chan error, 1)
	go func() {
		for i := range total {
			err := cs.SendWait(ctx, client.Message{Topic: "in", Payload: []byte("up-" + strconv.Itoa(i))})
			if err != nil {
				sendDone <- fmt.Errorf("SendWait %d: %w", i, err)
				return
			}
		}
		sendDone <- nil
	}()
	var killedAt time.Time
	for i := range total {
		if i == killAt {
			killedAt = time.Now()
			victim.kill()
		}
		payload := []byte("down-" + strconv.Itoa(i))
		key := "down-" + strconv.Itoa(i)
		for {
			n, err := publisher.srv.Publish(ctx, broker.Client("dev1"), payload, key)
			if err == nil && n == 1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publishing %d: %v (reached %d)", i, err, n)
			}
			t.Logf("publish %d: reached %d, %v; retrying", i, n, err)
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * time.Millisecond)
	}
	resumed := awaitConnected(t, ctx, states)
	t.Logf("kill → connected on %s after %v, resumed=%v (%v)", resumed.ServerID, resumed.Time.Sub(killedAt), resumed.Resumed, resumed.ResumeStatus)
	if resumed.ServerID != other.id || !resumed.Resumed {
		t.Errorf("after the kill: connected to %s resumed=%v (%v); want %s resumed=true", resumed.ServerID, resumed.Resumed, resumed.ResumeStatus, other.id)
	}
	var got []string
	for len(got) < total {
		select {
		case p := <-received:
			got = append(got, p)
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages; last %v", len(got), total, got[max(0, len(got)-3):])
		}
	}
	for i, p := range got {
		if want := "down-" + strconv.Itoa(i); p != want {
			t.Fatalf("message %d is %q, want %q (around: %v)", i, p, want, got[max(0, i-3):min(len(got), i+3)])
		}
	}
	select {
	case p := <-received:
		t.Errorf("an extra message arrived: %q", p)
	case <-time.After(200 * time.Millisecond):
	}
	if err := <-sendDone; err != nil {
		t.Fatal(err)
	}
	n, dups := rec.count()
	if n != total || len(dups) > 0 {
		t.Errorf("handled %d distinct client messages of %d; duplicates: %v", n, total, dups)
	}
}

func awaitConnected(t *testing.T, ctx context.Context, states <-chan client.StateChange) client.StateChange {
	t.Helper()
	for {
		select {
		case c := <-states:
			if c.State == client.StateConnected {
				return c
			}
		case <-ctx.Done():
			t.Fatal("no connected state in time")
		}
	}
}

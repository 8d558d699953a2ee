package nats_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
func startNode(t testing.TB, id, urls string, replicas int, opts ...server.Option) *node {
	t.Helper()
	return startNodeWith(t, id, urls, natsbroker.Options{Replicas: replicas, Timeout: 3 * time.Second, Logger: quiet()}, opts...)
}

// startNodeWith starts node id as startNode does, with broker options o.
func startNodeWith(t testing.TB, id, urls string, o natsbroker.Options, opts ...server.Option) *node {
	t.Helper()
	b, err := natsbroker.Connect(urls, o)
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	return startNodeOn(t, id, b, opts...)
}

// startNodeOn starts node id as startNode does, on broker b (not started).
func startNodeOn(t testing.TB, id string, b *natsbroker.Broker, opts ...server.Option) *node {
	t.Helper()
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
	if err := srv.Start(t.Context()); err != nil {
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
// the client messages it handles, on any node, by payload, with the nodes
// that handled each.
type recorder struct {
	server.Router
	mu      sync.Mutex
	handled map[string][]string
	node    string
}

func newRecorder() *recorder { return &recorder{handled: make(map[string][]string)} }

// on returns the recorder's handler for node: the same counts, noting
// the node.
func (r *recorder) on(node string) server.Handler { return &onNode{r, node} }

type onNode struct {
	*recorder
	node string
}

func (h *onNode) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	return h.recorder.handle(ctx, s, m, h.node)
}

func (r *recorder) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	return r.handle(ctx, s, m, "")
}

func (r *recorder) handle(ctx context.Context, s *server.Session, m *server.Message, node string) error {
	if m.Target.Kind == broker.KindTopic && m.Target.Name == "in" {
		r.mu.Lock()
		r.handled[string(m.Payload)] = append(r.handled[string(m.Payload)], node)
		r.mu.Unlock()
		return nil
	}
	return r.Router.OnMessage(ctx, s, m)
}

// count returns how many distinct messages were handled, the duplicates,
// and the redeliveries: a message handled on victim, which was then
// killed, and once more on another node. That is the one duplicate a
// Handler may see (see server.Handler): the node died between handling the
// message and recording its key, and the client re-sent it.
func (r *recorder) count(victim string) (total int, dups, redelivered []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, nodes := range r.handled {
		total++
		switch {
		case len(nodes) == 1:
		case len(nodes) == 2 && victim != "" && nodes[0] == victim && nodes[1] != victim:
			redelivered = append(redelivered, k)
		default:
			dups = append(dups, fmt.Sprintf("%s×%d on %v", k, len(nodes), nodes))
		}
	}
	return total, dups, redelivered
}

// disruption is what befalls the node holding the client's session (the
// victim) in the middle of the traffic.
type disruption struct {
	name     string
	servers  int  // NATS servers
	moves    bool // the session must resume on the other node
	disrupt  func(t *testing.T, victim *node, nats []*natstest.Server)
	replicas int
	// killsVictim says the victim dies without a goodbye: a message it
	// handled may be handled again on the node the session moves to.
	killsVictim bool
}

var disruptions = []disruption{
	{name: "KillNode/OneNATS", servers: 1, replicas: 1, moves: true, killsVictim: true, disrupt: func(_ *testing.T, v *node, _ []*natstest.Server) { v.kill() }},
	{name: "KillNode/NATSCluster", servers: 3, replicas: 3, moves: true, killsVictim: true, disrupt: func(_ *testing.T, v *node, _ []*natstest.Server) { v.kill() }},
	{name: "DrainNode", servers: 3, replicas: 3, moves: true, disrupt: func(t *testing.T, v *node, _ []*natstest.Server) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := v.srv.Drain(ctx); err != nil {
				t.Errorf("Drain: %v", err)
			}
		}()
	}},
	{name: "RestartNATSServer", servers: 3, replicas: 3, disrupt: func(t *testing.T, v *node, servers []*natstest.Server) {
		// The NATS server the victim is connected to.
		url := v.b.Conn().ConnectedUrl()
		for _, s := range servers {
			if s.URL() == url {
				s.Shutdown()
				// Restarted meanwhile; the test ends only once it is
				// (a failure there is the test's, not a panic after it).
				done := make(chan struct{})
				go func() {
					defer close(done)
					s.Restart(goroutineTB{t})
				}()
				t.Cleanup(func() { <-done })
				return
			}
		}
		t.Fatalf("the victim's NATS server %s is not one of the cluster's", url)
	}},
}

// TestDisruptions runs three tether nodes on NATS, a client whose session
// is on n1 or n2, a publisher on n3 sending to the client's id and the
// client sending to the servers, and disrupts the client's node mid-stream:
// every message in each direction must arrive once, in order.
func TestDisruptions(t *testing.T) {
	for _, d := range disruptions {
		t.Run(d.name, func(t *testing.T) {
			var servers []*natstest.Server
			if d.servers == 1 {
				servers = []*natstest.Server{natstest.Start(t)}
			} else {
				servers = natstest.StartCluster(t, d.servers)
			}
			urls := natstest.ClusterURLs(servers)
			rec := newRecorder()
			nodes := []*node{
				startNode(t, "n1", urls, d.replicas, server.WithHandler(rec.on("n1"))),
				startNode(t, "n2", urls, d.replicas, server.WithHandler(rec.on("n2"))),
				startNode(t, "n3", urls, d.replicas, server.WithHandler(rec.on("n3"))),
			}
			testDisruption(t, d, nodes, servers, rec)
		})
	}
}

func testDisruption(t *testing.T, d disruption, nodes []*node, servers []*natstest.Server, rec *recorder) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	states := make(chan client.StateChange, 64)
	cs, err := client.New(
		client.WithAddrs(nodes[0].addr, nodes[1].addr),
		client.WithClientID("dev1"),
		client.WithProfile(profile.Datacenter()),
		client.WithHeartbeat(time.Second),
		client.WithLogger(quiet()),
		onState(states),
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
	const disruptAt = 150
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
	var disruptedAt time.Time
	for i := range total {
		if i == disruptAt {
			disruptedAt = time.Now()
			d.disrupt(t, victim, servers)
		}
		payload := []byte("down-" + strconv.Itoa(i))
		key := "down-" + strconv.Itoa(i)
		for {
			n, err := publisher.srv.Publish(ctx, broker.Client("dev1"), payload, key)
			if (err == nil && n == 1) || errors.Is(err, server.ErrDuplicate) {
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
	if d.moves {
		resumed := awaitConnected(t, ctx, states)
		t.Logf("disruption → connected on %s after %v, resumed=%v (%v)", resumed.ServerID, resumed.Time.Sub(disruptedAt), resumed.Resumed, resumed.ResumeStatus)
		if resumed.ServerID != other.id || !resumed.Resumed {
			t.Errorf("after the disruption: connected to %s resumed=%v (%v); want %s resumed=true", resumed.ServerID, resumed.Resumed, resumed.ResumeStatus, other.id)
		}
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
	if err := <-sendDone; err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-received:
		t.Errorf("an extra message arrived: %q", p)
	case <-time.After(200 * time.Millisecond):
	}
	killed := ""
	if d.killsVictim {
		killed = victim.id
	}
	n, dups, redelivered := rec.count(killed)
	if n != total || len(dups) > 0 {
		t.Errorf("handled %d distinct client messages of %d; duplicates: %v", n, total, dups)
	}
	if len(redelivered) > 0 {
		t.Logf("handled again after %s died between handling and recording them: %v", victim.id, redelivered)
	}
	for {
		select {
		case c := <-states:
			t.Logf("then: %v on %s resumed=%v %v", c.State, c.ServerID, c.Resumed, c.Err)
			continue
		default:
		}
		break
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

// TestGarbageOnRoutes publishes what a misbehaving NATS client might on a
// node's routes: undecodable bodies, a body for another address, a bogus
// eviction, an unknown operation. The node drops them (an eviction gets an
// error reply) and keeps delivering.
func TestGarbageOnRoutes(t *testing.T) {
	urls := natstest.Start(t).URL()
	n := startNode(t, "n1", urls, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cs, err := client.New(client.WithAddrs(n.addr), client.WithClientID("dev1"), client.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	if err := cs.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	raw := natstest.Connect(t, urls)
	route := "tether.r.c." + base64.RawURLEncoding.EncodeToString([]byte("dev1"))
	for _, m := range []*nats.Msg{
		{Subject: route, Data: []byte{0xff, 0xff, 0xff}},
		{Subject: route, Data: []byte{0x08, 0x01, 0x12, 0x03, 'x', 'y', 'z'}}, // a topic message on a client route
		{Subject: route, Data: []byte("not json"), Header: nats.Header{"Tether-Op": []string{"evict"}}},
		{Subject: route, Data: []byte("x"), Header: nats.Header{"Tether-Op": []string{"explode"}}},
	} {
		if m.Header.Get("Tether-Op") == "evict" {
			reply, err := raw.RequestMsg(m, 5*time.Second)
			if err != nil || !strings.Contains(string(reply.Data), "bad eviction") {
				t.Errorf("bogus eviction: reply %q, %v; want a 'bad eviction' reply", reply.Data, err)
			}
			continue
		}
		if err := raw.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, err := n.srv.Publish(ctx, broker.Client("dev1"), []byte("still here"), ""); got != 1 || err != nil {
		t.Fatalf("Publish after the garbage = %d, %v", got, err)
	}
	m, err := cs.Receive(ctx)
	if err != nil || string(m.Payload) != "still here" {
		t.Fatalf("Receive = %v, %v; want the message published after the garbage", m, err)
	}
}

// TestAcrossNodes checks what a shared broker adds, node to node: a newer
// session of a client id on another node takes over (the older stream
// ends with TAKEN_OVER), unless it is another principal's; idempotency
// keys are seen on every node; and a session resumed elsewhere keeps its
// topics.
func TestAcrossNodes(t *testing.T) {
	urls := natstest.Start(t).URL()
	// The principal is the client's "principal" metadata key, for the test.
	principal := server.WithPrincipal(func(ctx context.Context) string {
		if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("principal")) > 0 {
			return md.Get("principal")[0]
		}
		return "p1"
	})
	n1 := startNode(t, "n1", urls, 1, principal)
	n2 := startNode(t, "n2", urls, 1, principal)
	n3 := startNode(t, "n3", urls, 1, principal)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	open := func(addr, id, principal string, topics ...string) (*client.Session, <-chan client.StateChange) {
		states := make(chan client.StateChange, 16)
		cs, err := client.New(client.WithAddrs(addr), client.WithClientID(id), client.WithTopics(topics...), client.WithLogger(quiet()),
			client.WithDialOptions(grpc.WithStreamInterceptor(withPrincipal(principal))),
			onState(states))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close(context.Background()) })
		if err := cs.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		awaitConnected(t, ctx, states)
		return cs, states
	}

	t.Run("NewestWins", func(t *testing.T) {
		old, oldStates := open(n1.addr, "dev-a", "p1")
		_, _ = open(n2.addr, "dev-a", "p1")
		for {
			select {
			case c := <-oldStates:
				if c.State != client.StateClosed {
					continue
				}
				var ga *client.GoAwayError
				if !errors.As(c.Err, &ga) || ga.Reason != client.GoAwayTakenOver {
					t.Errorf("the older session closed with %v, want a TAKEN_OVER go_away", c.Err)
				}
				if _, err := old.Receive(ctx); !errors.Is(err, client.ErrClosed) {
					t.Errorf("Receive on the older session = %v, want ErrClosed", err)
				}
				return
			case <-ctx.Done():
				t.Fatal("the older session on n1 was not taken over")
			}
		}
	})

	t.Run("OtherPrincipalRefused", func(t *testing.T) {
		_, _ = open(n1.addr, "dev-b", "p1")
		states := make(chan client.StateChange, 16)
		cs, err := client.New(client.WithAddrs(n2.addr), client.WithClientID("dev-b"), client.WithLogger(quiet()),
			client.WithDialOptions(grpc.WithStreamInterceptor(withPrincipal("p2"))),
			onState(states))
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close(context.Background())
		go func() { _ = cs.Connect(ctx) }()
		for {
			select {
			case c := <-states:
				if c.State == client.StateConnected {
					t.Fatal("another principal took over the client id")
				}
				if c.Err != nil {
					if status.Code(c.Err) != codes.PermissionDenied {
						t.Errorf("the attempt failed with %v, want PermissionDenied", c.Err)
					}
					return
				}
			case <-ctx.Done():
				t.Fatal("no attempt failed")
			}
		}
	})

	t.Run("IdempotencyKeyOnEveryNode", func(t *testing.T) {
		if _, err := n1.srv.Publish(ctx, broker.Topic("nobody"), []byte("x"), "key-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := n3.srv.Publish(ctx, broker.Topic("nobody"), []byte("x"), "key-1"); !errors.Is(err, server.ErrDuplicate) {
			t.Errorf("the same key on another node: %v, want ErrDuplicate", err)
		}
	})

	t.Run("TopicsFollowTheSession", func(t *testing.T) {
		states := make(chan client.StateChange, 16)
		cs, err := client.New(client.WithAddrs(n1.addr, n2.addr), client.WithClientID("dev-c"), client.WithTopics("news"),
			client.WithLogger(quiet()), client.WithProfile(profile.Datacenter()),
			client.WithDialOptions(grpc.WithStreamInterceptor(withPrincipal("p1"))),
			onState(states))
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close(context.Background())
		if err := cs.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		first := awaitConnected(t, ctx, states)
		victim := n1
		if first.ServerID == "n2" {
			victim = n2
		}
		victim.kill()
		if c := awaitConnected(t, ctx, states); !c.Resumed || c.ServerID == victim.id {
			t.Fatalf("after the kill: %s resumed=%v", c.ServerID, c.Resumed)
		}
		// The topic was re-bound on the new node, by the record and by the
		// SDK's resync alike: one copy arrives.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := n3.srv.Publish(ctx, broker.Topic("news"), []byte("hello"), ""); err != nil {
				t.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			m, err := cs.Receive(rctx)
			rcancel()
			if err == nil {
				if string(m.Payload) != "hello" || m.Topic != "news" {
					t.Fatalf("got %q on %q", m.Payload, m.Topic)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a topic message published on n3 never reached the resumed session")
			}
		}
	})
}

// withPrincipal sends the test principal as metadata on every stream.
func withPrincipal(p string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(metadata.AppendToOutgoingContext(ctx, "principal", p), desc, cc, method, opts...)
	}
}

// onState sends the session's state changes to ch, dropping those that do
// not fit.
func onState(ch chan<- client.StateChange) client.Option {
	return client.WithOnState(func(c client.StateChange) {
		select {
		case ch <- c:
		default:
		}
	})
}

// goroutineTB is t for a goroutine other than the test's: Fatalf reports
// the failure and ends that goroutine (FailNow may end only the test's).
type goroutineTB struct{ *testing.T }

func (g goroutineTB) Fatalf(format string, args ...any) {
	g.T.Errorf(format, args...)
	runtime.Goexit()
}

package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// coreNode is a started server on a loopback listener, for the tests of the
// session core that need its insides.
type coreNode struct {
	srv *Server
	cc  *grpc.ClientConn
}

func startCoreNode(t *testing.T, tune func(*Server), opts ...Option) *coreNode {
	t.Helper()
	srv, err := New(append([]Option{WithServerID("core")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(srv)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		gs.Stop()
		<-served
		_ = srv.Close()
	})
	return &coreNode{srv: srv, cc: cc}
}

// connect opens a stream and sends Hello h.
func (n *coreNode) connect(t *testing.T, h *tetherv1.Hello) (tetherv1.TetherService_ConnectClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := tetherv1.NewTetherServiceClient(n.cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: h}}); err != nil {
		t.Fatal(err)
	}
	return c, cancel
}

// welcome returns the stream's first frame, which must be Welcome.
func welcomeOf(t *testing.T, c tetherv1.TetherService_ConnectClient) *tetherv1.Welcome {
	t.Helper()
	f, err := c.Recv()
	if err != nil {
		t.Fatalf("no welcome: %v", err)
	}
	if f.GetWelcome() == nil {
		t.Fatalf("first frame %v; want welcome", f)
	}
	return f.GetWelcome()
}

// slowConnect is a Handler whose OnConnect takes longer than the hello
// timeout the test sets.
type slowConnect struct {
	Router
	d time.Duration
}

func (h slowConnect) OnConnect(ctx context.Context, s *Session) error {
	t := time.NewTimer(h.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// The hello timeout bounds receiving Hello, not opening the session: an
// OnConnect slower than the timeout still gets its client a Welcome, and
// no session is left behind unwelcomed.
func TestHelloTimeoutBoundsHelloOnly(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	n := startCoreNode(t, func(srv *Server) { srv.cfg.helloTimeout = timeout },
		WithHandler(slowConnect{d: 4 * timeout}))
	c, _ := n.connect(t, &tetherv1.Hello{ClientId: "slow"})
	w := welcomeOf(t, c)
	s, err := n.srv.session(w.GetSessionId())
	if err != nil {
		t.Fatal(err)
	}
	if st := s.info().GetState(); st != tetherv1.SessionState_SESSION_STATE_CONNECTED {
		t.Fatalf("session %v; want CONNECTED", st)
	}
	if got := len(n.srv.snapshot()); got != 1 {
		t.Fatalf("%d sessions on the server; want 1", got)
	}
}

// Silence is counted from Hello, the first frame received, not from the
// stream's start.
func TestSilenceCountsFromHello(t *testing.T) {
	t.Parallel()
	n := startCoreNode(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := tetherv1.NewTetherServiceClient(n.cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The server's side of the stream has started (it counts it) before
	// Hello is sent.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(n.srv.metrics.streams) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stream never started on the server")
		}
		time.Sleep(time.Millisecond)
	}
	sent := time.Now()
	if err := c.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{}}}); err != nil {
		t.Fatal(err)
	}
	w := welcomeOf(t, c)
	s, err := n.srv.session(w.GetSessionId())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	last := time.Unix(0, s.st.lastRead.Load())
	s.mu.Unlock()
	if last.Before(sent) {
		t.Fatalf("the last frame received is dated %v before Hello was sent: silence counts from the stream's start", sent.Sub(last))
	}
}

// recordingBroker counts Start calls and reports the context it got.
type recordingBroker struct {
	broker.Broker
	starts chan context.Context
}

func (b *recordingBroker) Start(ctx context.Context, node string, r broker.Receiver) error {
	b.starts <- ctx
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.Broker.Start(ctx, node, r)
}

// New does no I/O: the broker starts in Start, under its context; until
// then the server reports not ready and refuses sessions.
func TestNewDoesNotStartTheBroker(t *testing.T) {
	t.Parallel()
	b := &recordingBroker{Broker: memory.New(), starts: make(chan context.Context, 2)}
	srv, err := New(WithBroker(b))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if len(b.starts) != 0 {
		t.Fatal("New started the broker")
	}
	gs := grpc.NewServer()
	srv.Register(gs)
	if err := srv.Ready(); err == nil {
		t.Fatal("Ready before Start: nil")
	}
	if err := srv.startedErr(); status.Code(err) != codes.Unavailable {
		t.Fatalf("a session before Start: %v; want UNAVAILABLE", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a canceled context: %v; want context.Canceled", err)
	}
	if got := <-b.starts; got.Err() == nil {
		t.Fatal("the broker did not get Start's context")
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start after a failed Start: %v", err)
	}
	if err := srv.Ready(); err != nil {
		t.Fatalf("Ready after Start: %v", err)
	}
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("a second Start: nil")
	}
}

// lockCheckBroker fails the test when a session's record is stored, or its
// log read or trimmed, while the session's mutex is held.
type lockCheckBroker struct {
	broker.Broker
	srv    *Server
	mu     sync.Mutex
	checks map[string]int
	held   []string
}

// check notes a broker call for session id and whether the session's mutex
// was free. A mutex held by another goroutine for a moment is let go
// within the retries; one held by the caller, which waits here, never is.
func (b *lockCheckBroker) check(what, id string) {
	b.srv.mu.RLock()
	s := b.srv.sessions[id]
	for _, e := range b.srv.ended {
		if s == nil && e.id == id {
			s = e
		}
	}
	b.srv.mu.RUnlock()
	if s == nil {
		return
	}
	free := false
	for range 200 {
		if s.mu.TryLock() {
			s.mu.Unlock()
			free = true
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checks[what]++
	if !free {
		b.held = append(b.held, what)
	}
}

func (b *lockCheckBroker) PutSession(ctx context.Context, rec broker.SessionRecord) error {
	b.check("put", rec.ID)
	return b.Broker.PutSession(ctx, rec)
}

func (b *lockCheckBroker) Log(id string) broker.Log {
	return lockCheckLog{Log: b.Broker.Log(id), b: b, id: id}
}

type lockCheckLog struct {
	broker.Log
	b  *lockCheckBroker
	id string
}

func (l lockCheckLog) Read(ctx context.Context, from uint64, fn func(broker.Entry) bool) error {
	l.b.check("read", l.id)
	return l.Log.Read(ctx, from, fn)
}

func (l lockCheckLog) Trim(ctx context.Context, upTo uint64) error {
	l.b.check("trim", l.id)
	return l.Log.Trim(ctx, upTo)
}

// No broker I/O waits under a session's mutex: the record puts (Welcome,
// Subscribe, detach, end), the replay read and the trims happen outside it.
func TestNoBrokerIOUnderSessionLock(t *testing.T) {
	t.Parallel()
	b := &lockCheckBroker{Broker: memory.New(), checks: map[string]int{}}
	n := startCoreNode(t, func(srv *Server) { b.srv = srv }, WithBroker(b))
	c, cancel := n.connect(t, &tetherv1.Hello{ClientId: "k", Topics: []string{"a"}})
	w := welcomeOf(t, c)
	if err := c.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: []string{"b"}}}}); err != nil {
		t.Fatal(err)
	}
	s, err := n.srv.session(w.GetSessionId())
	if err != nil {
		t.Fatal(err)
	}
	// The reader handles frames in order, and a Subscribe binds the topic
	// before the next: the pong says "b" is bound (Topics lists it before).
	if err := c.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if f.GetPong() != nil {
			break
		}
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := n.srv.Publish(ctx, broker.Topic("b"), []byte{byte(i)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 3; {
		f, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if f.GetMessage() != nil {
			got++
		}
	}
	if err := c.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: 1}}}); err != nil {
		t.Fatal(err)
	}
	cancel() // the stream breaks: the session detaches
	waitCore(t, func() bool { return s.info().GetState() == tetherv1.SessionState_SESSION_STATE_DETACHED })
	c2, _ := n.connect(t, &tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w.GetResumeToken(), LastReceivedSeq: 2}})
	if w2 := welcomeOf(t, c2); !w2.GetResumed() {
		t.Fatalf("resume: %v", w2.GetResumeStatus())
	}
	s.close(nil, "test")
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.held) > 0 {
		t.Fatalf("broker calls under the session's mutex: %v", b.held)
	}
	if b.checks["put"] < 4 || b.checks["read"] < 1 || b.checks["trim"] < 1 {
		t.Fatalf("broker calls seen: %v; want puts (welcome, subscribe, detach, end), a replay read and trims", b.checks)
	}
}

// waitCore waits for cond, polling, for at most 10 seconds.
func waitCore(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// gatedPutBroker holds the first record put after arm until open.
type gatedPutBroker struct {
	broker.Broker
	armed   atomic.Bool
	inPut   chan struct{} // a held put started
	gate    chan struct{} // lets it go on
	putDone chan struct{} // it finished
}

func (b *gatedPutBroker) PutSession(ctx context.Context, rec broker.SessionRecord) error {
	if !b.armed.CompareAndSwap(true, false) {
		return b.Broker.PutSession(ctx, rec)
	}
	close(b.inPut)
	<-b.gate
	defer close(b.putDone)
	return b.Broker.PutSession(ctx, rec)
}

// Once a session moved to another node, no record put from this node may
// land after the move: a reader's detach that raced the eviction would
// overwrite the record of the node that resumed it (its token, its seqs),
// and the client's next resume would find an unknown session.
func TestMovedSessionWritesNoStaleRecord(t *testing.T) {
	t.Parallel()
	b := &gatedPutBroker{Broker: memory.New(), inPut: make(chan struct{}), gate: make(chan struct{}), putDone: make(chan struct{})}
	n := startCoreNode(t, nil, WithBroker(b))
	c, cancel := n.connect(t, &tetherv1.Hello{})
	w := welcomeOf(t, c)
	s, err := n.srv.session(w.GetSessionId())
	if err != nil {
		t.Fatal(err)
	}
	b.armed.Store(true)
	cancel() // the stream breaks: the reader's detach puts the record, held
	<-b.inPut
	released := make(chan struct{})
	go func() {
		s.release("node-2") // an eviction: node-2 resumes the session
		close(released)
	}()
	newer := broker.SessionRecord{ID: s.id, Node: "node-2", Principal: s.principal}
	select {
	case <-released:
		// The move did not wait for the put in flight: node-2 stores its
		// record, then the held put lands on it.
		if err := b.Broker.PutSession(context.Background(), newer); err != nil {
			t.Fatal(err)
		}
		close(b.gate)
		<-b.putDone
	case <-time.After(100 * time.Millisecond):
		close(b.gate)
		<-released
		if err := b.Broker.PutSession(context.Background(), newer); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	s.putRecordLocked() // a late put from this node, after the move
	s.unlock()
	rec, ok, err := b.Broker.GetSession(context.Background(), s.id)
	if err != nil || !ok || rec.Node != "node-2" {
		t.Fatalf("the record after the move names node %q (%v %v); want node-2's", rec.Node, ok, err)
	}
}

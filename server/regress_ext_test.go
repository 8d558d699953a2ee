package server_test

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// waitState polls GetSession until the session is in want.
func waitState(t *testing.T, n *node, id string, want tetherv1.SessionState) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: id})
		if err == nil && r.GetSession().GetState() == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session %s never reached %v", id, want)
}

func rvResume(id, tok string, last uint64) *tetherv1.Hello {
	return &tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Minute),
		Resume: &tetherv1.Resume{SessionId: id, ResumeToken: tok, LastReceivedSeq: last}}
}

// ---------------------------------------------------------------------------
// R1: two resumes with the same token: the newer wins, the older is told it
// was taken over, and the winner's token works afterwards.

type gateOnResume struct {
	server.Router
	n    atomic.Int32
	hit  chan struct{}
	gate chan struct{}
}

func (h *gateOnResume) OnConnect(ctx context.Context, s *server.Session) error {
	if s.Resumed() && h.n.Add(1) == 1 {
		close(h.hit)
		<-h.gate
	}
	return nil
}

func TestRegressConcurrentResumeWithOneToken(t *testing.T) {
	h := &gateOnResume{hit: make(chan struct{}), gate: make(chan struct{})}
	n := startNode(t, noMaxAge(), server.WithHandler(h))
	c0 := n.dial(t, "")
	w0 := c0.open(&tetherv1.Hello{ClientId: "dev"})
	c0.close()
	waitState(t, n, w0.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)

	cA := n.dial(t, "")
	cA.send(hello(rvResume(w0.GetSessionId(), w0.GetResumeToken(), 0)))
	<-h.hit // A is attached, its OnConnect is running

	// The same token again, before A's Welcome went out: A's Welcome may
	// be lost, so the token A presented still works, and the newer stream
	// wins, as any takeover. B's OnConnect waits for A's (the Handler's
	// calls of one session are serialized): A's is let go once B took the
	// session over.
	cB := n.dial(t, "")
	cB.send(hello(rvResume(w0.GetSessionId(), w0.GetResumeToken(), 0)))
	waitFor(t, func() bool {
		r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w0.GetSessionId()})
		return err == nil && r.GetSession().GetResumes() == 2
	})
	close(h.gate)
	wB := cB.next().GetWelcome()
	if !wB.GetResumed() {
		t.Fatalf("a second resume with the token A presented: %v", wB)
	}
	if st := cA.end(); st.Code() != codes.Aborted {
		t.Fatalf("A, taken over before its Welcome, ended with %v; want ABORTED", st)
	}
	// B is the live stream; its token resumes the session.
	cB.close()
	waitState(t, n, w0.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
	cC := n.dial(t, "")
	if wC := cC.open(rvResume(w0.GetSessionId(), wB.GetResumeToken(), 0)); !wC.GetResumed() {
		t.Fatalf("resume with the live stream's token: %v", wC.GetResumeStatus())
	}
}

// ---------------------------------------------------------------------------
// R2: a resume with a backlog above max_outbound_queue (but within the log)
// is cut as a slow consumer by the very next message.

func TestRegressResumeWithBacklogIsCutAtOnce(t *testing.T) {
	n := startNode(t, noMaxAge(), server.WithMaxOutboundQueue(4), server.WithOutboundLog(64))
	c0 := n.dial(t, "")
	w0 := c0.open(&tetherv1.Hello{})
	c0.close()
	id := w0.GetSessionId()
	waitState(t, n, id, tetherv1.SessionState_SESSION_STATE_DETACHED)
	ctx := context.Background()
	for range 10 { // within the log (64): nothing is lost
		if _, err := n.srv.Publish(ctx, brokerSession(id), []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	c1 := n.dial(t, "")
	w1 := c1.open(rvResume(id, w0.GetResumeToken(), 0))
	if w1.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED {
		t.Fatalf("resume: %v", w1.GetResumeStatus())
	}
	// The client is reading promptly; one more message arrives.
	if _, err := n.srv.Publish(ctx, brokerSession(id), []byte("y"), ""); err != nil {
		t.Fatal(err)
	}
	got := 0
	for f := range c1.frames {
		if f.GetMessage() != nil {
			got++
			c1.send(ack(f.GetMessage().GetSeq()))
			if got == 11 {
				return // all delivered: fine
			}
		}
		if g := f.GetGoAway(); g != nil {
			t.Fatalf("resumed client cut with %v %q after %d of 11 messages", g.GetReason(), g.GetMessage(), got)
		}
	}
}

// ---------------------------------------------------------------------------
// R3: a client that stops reading blocks the writer in ss.Send; neither the
// slow-consumer cut nor the heartbeat deadline ends the handler.

func startObservedNode(t *testing.T, opts ...server.Option) (*server.Server, *grpc.ClientConn, *atomic.Int32) {
	t.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var running atomic.Int32
	obs := func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		running.Add(1)
		defer running.Add(-1)
		return h(s, ss)
	}
	gs := grpc.NewServer(append(srv.GRPCServerOptions(), grpc.ChainStreamInterceptor(obs))...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	// Small fixed windows (this also disables BDP): the server's Send blocks
	// after ~128 KiB if the client does not read.
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(); gs.Stop(); <-done; _ = srv.Close() })
	return srv, cc, &running
}

func fastProfile() server.Option {
	p := profile.Datacenter()
	p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0
	return server.WithProfile(p)
}

func TestRegressNonReadingClientIsNeverCut(t *testing.T) {
	srv, cc, running := startObservedNode(t, fastProfile(), server.WithMaxOutboundQueue(8))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Second)}))
	f, err := s.Recv()
	if err != nil || f.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", f, err)
	}
	id := f.GetWelcome().GetSessionId()
	// From now on the client neither reads nor sends (its app is stuck; its
	// transport is alive).
	payload := make([]byte, 100<<10)
	for range 9 { // the 9th exceeds max_outbound_queue 8 -> slow-consumer cut
		if _, err := srv.Publish(ctx, brokerSession(id), payload, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the writer reach ss.Send
	}
	// dead_after is 1s*3+0.5s = 3.5s. Give it 3x that.
	deadline := time.Now().Add(11 * time.Second)
	for time.Now().Before(deadline) {
		if running.Load() == 0 {
			for {
				f, err := s.Recv()
				if err != nil {
					t.Logf("ended after %v: %v", time.Since(deadline.Add(-11*time.Second)), err)
					break
				}
				t.Logf("frame %T", f.Frame)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("Connect handler still running 11s after the slow-consumer cut and past dead_after: writer blocked in ss.Send")
}

// ---------------------------------------------------------------------------
// R4: after a takeover the old stream's reader keeps handling frames, so
// OnMessage runs concurrently for one session (and can run twice for a seq).

type concurrencyProbe struct {
	server.Router
	inFlight, maxSeen atomic.Int32
	calls             atomic.Int32
	release           chan struct{}
}

func (h *concurrencyProbe) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for {
		old := h.maxSeen.Load()
		if n <= old || h.maxSeen.CompareAndSwap(old, n) {
			break
		}
	}
	if h.calls.Add(1) == 1 {
		<-h.release
	}
	return nil
}

func TestRegressOldReaderRunsAfterTakeover(t *testing.T) {
	h := &concurrencyProbe{release: make(chan struct{})}
	srv, cc, _ := startObservedNode(t, noMaxAge(), server.WithHandler(h), server.WithMaxOutboundQueue(64))
	defer close(h.release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl := tetherv1.NewTetherServiceClient(cc)
	a, _ := cl.Connect(ctx)
	_ = a.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Minute)}))
	f, _ := a.Recv()
	w := f.GetWelcome()
	// A stops reading (its connection is going bad); the server's writer for A
	// blocks in Send.
	payload := make([]byte, 100<<10)
	for range 4 {
		_, _ = srv.Publish(ctx, brokerSession(w.GetSessionId()), payload, "")
	}
	time.Sleep(200 * time.Millisecond)
	// The client resumes on B; A is taken over.
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	b, _ := cl.Connect(bctx)
	_ = b.Send(hello(rvResume(w.GetSessionId(), w.GetResumeToken(), 0)))
	f, _ = b.Recv()
	if !f.GetWelcome().GetResumed() {
		t.Fatalf("B not resumed: %v", f)
	}
	go func() {
		for {
			if _, err := b.Recv(); err != nil {
				return
			}
		}
	}()
	// A frame still in flight on A is handled for the session B now holds.
	_ = a.Send(toTopic(1, "t", "from A after takeover"))
	time.Sleep(200 * time.Millisecond)
	_ = b.Send(toTopic(2, "t", "from B"))
	time.Sleep(200 * time.Millisecond)
	if h.calls.Load() > 0 && h.maxSeen.Load() > 1 {
		t.Fatalf("OnMessage ran %d times, %d at once for one session: the taken-over stream's reader still handles frames", h.calls.Load(), h.maxSeen.Load())
	}
	if h.calls.Load() > 0 {
		t.Fatalf("OnMessage ran for a frame on the taken-over stream")
	}
}

// ---------------------------------------------------------------------------
// R5: a stream opened on an old connection is not sent away at once.

func TestRegressMaxAgeGoAwayLoopsOnSameConnection(t *testing.T) {
	p := profile.Datacenter()
	p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 4*time.Second, 10*time.Second
	n := startNode(t, server.WithProfile(p))
	c1 := n.dial(t, "")
	w := c1.open(&tetherv1.Hello{})
	for f := c1.next(); f.GetGoAway() == nil; f = c1.next() {
	}
	c1.end()
	start := time.Now()
	c2 := n.dial(t, "") // same *grpc.ClientConn: same HTTP/2 connection
	w2 := c2.open(rvResume(w.GetSessionId(), w.GetResumeToken(), 0))
	if f := c2.next(); f.GetGoAway().GetReason() == tetherv1.GoAwayReason_GO_AWAY_REASON_MAX_AGE && time.Since(start) < time.Second {
		t.Fatalf("resumed=%v stream got GoAway{MAX_AGE} %v after Welcome; want at least half the max age (2s)", w2.GetResumed(), time.Since(start).Round(time.Millisecond))
	}
}

// ---------------------------------------------------------------------------
// R7: control frames (Pong, Error, Ack) are queued without bound: a client
// that sends pings and never reads grows the server's heap without limit.

func TestRegressPingFloodDoesNotGrowTheHeap(t *testing.T) {
	// The frame-rate limit would cut this flood; lift it to see that the
	// pongs coalesce.
	_, cc, _ := startObservedNode(t, noMaxAge(), server.WithFrameRate(1e9, 1e9))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	_ = s.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Minute)}))
	if f, err := s.Recv(); err != nil || f.GetWelcome() == nil {
		t.Fatal(f, err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	ping := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}}
	for range 300_000 {
		if err := s.Send(ping); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	grown := int64(heap()) - int64(before)
	t.Logf("heap grew by %d MiB after 300k pings from a client that does not read", grown>>20)
	if grown > 16<<20 {
		t.Fatalf("unbounded control queue: +%d MiB", grown>>20)
	}
}

// ---------------------------------------------------------------------------
// R8: the idempotency key is recorded before OnMessage runs, so a message
// that failed (Error frame) can never be retried with the same key.

func TestRegressIdempotencyKeyBurnedByFailedMessage(t *testing.T) {
	n := startNode(t, noMaxAge())
	a := n.dial(t, "")
	a.open(&tetherv1.Hello{ClientId: "a"})
	send := func(seq uint64) {
		a.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: seq, Target: &tetherv1.ClientMessage_ClientId{ClientId: "b"}, IdempotencyKey: "order-42", Payload: []byte("p")}}})
	}
	send(1) // b is not connected yet: NOT_FOUND
	if f := a.next(); f.GetError() == nil {
		t.Fatalf("want an Error frame, got %v", f)
	}
	b := n.dial(t, "")
	b.open(&tetherv1.Hello{ClientId: "b"})
	send(2) // the retry the Error invited
	done := make(chan *tetherv1.ServerMessage, 1)
	go func() {
		select {
		case f, ok := <-b.frames:
			if ok {
				done <- f.GetMessage()
			}
		case <-time.After(time.Second):
		}
		close(done)
	}()
	if m := <-done; m == nil {
		t.Fatalf("retry after a failed delivery was dropped as a duplicate; b never got it")
	}
}

// A flood beyond the frame rate is cut, with a reason; others flow.
func TestFrameFloodIsCut(t *testing.T) {
	n := startNode(t, server.WithFrameRate(100, 200))
	good := n.dial(t, "")
	good.open(&tetherv1.Hello{ClientId: "good"})
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "flood"})
	ping := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}}
	for range 1000 {
		if err := c.stream.Send(ping); err != nil {
			break
		}
	}
	c.expectEnd(codes.ResourceExhausted, "frames per second")
	n.publishTo(t, "good", "still flowing")
	if m := good.message(); string(m.GetPayload()) != "still flowing" {
		t.Fatalf("got %v", m)
	}
}

package server_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Two resumes with the same token: the newer wins, the older is told it
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

func TestConcurrentResumesWithOneTokenNewerWins(t *testing.T) {
	t.Parallel()
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
	// wins, as any takeover.
	cB := n.dial(t, "")
	wB := cB.open(rvResume(w0.GetSessionId(), w0.GetResumeToken(), 0))
	if !wB.GetResumed() {
		t.Fatalf("a second resume with the token A presented: %v", wB)
	}
	close(h.gate)
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

// After a takeover the old stream's reader must not handle frames: OnMessage
// would run concurrently for one session (and could run twice for a seq).

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

func TestTakenOverStreamHandlesNoFrames(t *testing.T) {
	t.Parallel()
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

package server_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// After a takeover the old stream's reader handles no frame: a message still
// in flight on it is dropped unread (the client re-sends it on the new
// stream, unacked), so OnMessage never runs twice for a seq nor twice at
// once for one session; the same message on the new stream is handled.

// probe is a Handler that lists the payloads it handled and the most
// OnMessage calls it saw at once. Each call lasts a second (of fake time),
// so calls that were not serialized would overlap.
type probe struct {
	server.Router
	mu                sync.Mutex
	handled           []string
	inFlight, maxSeen int
}

func (h *probe) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	h.mu.Lock()
	h.handled = append(h.handled, string(m.Payload))
	h.inFlight++
	h.maxSeen = max(h.maxSeen, h.inFlight)
	h.mu.Unlock()
	time.Sleep(time.Second)
	h.mu.Lock()
	h.inFlight--
	h.mu.Unlock()
	return nil
}

func (h *probe) seen() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.handled), h.maxSeen
}

func TestTakenOverStreamHandlesNoFrames(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := &probe{}
		reg := prometheus.NewPedanticRegistry()
		srv, cc, _ := startObservedNode(t, noMaxAge(), server.WithHandler(h), server.WithMaxOutboundQueue(64), server.WithRegisterer(reg))
		received := func() float64 { return gauge(t, reg, "tether_frames_received_total", "type", "message") }
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cl := tetherv1.NewTetherServiceClient(cc)
		a, err := cl.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Minute)}))
		f, err := a.Recv()
		if err != nil || f.GetWelcome() == nil {
			t.Fatalf("A's welcome: %v %v", f, err)
		}
		w := f.GetWelcome()
		// A stops reading (its connection is going bad); the server's writer
		// for A blocks in Send.
		payload := make([]byte, 100<<10)
		for range 4 {
			if _, err := srv.Publish(ctx, brokerSession(w.GetSessionId()), payload, ""); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()

		// The client resumes on B; A is taken over.
		b, err := cl.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Send(hello(rvResume(w.GetSessionId(), w.GetResumeToken(), 0)))
		if f, err := b.Recv(); err != nil || !f.GetWelcome().GetResumed() {
			t.Fatalf("B not resumed: %v %v", f, err)
		}
		acks := make(chan uint64, 16)
		go func() {
			defer close(acks)
			for {
				f, err := b.Recv()
				if err != nil {
					return
				}
				if a := f.GetAck(); a != nil {
					acks <- a.GetSeq()
				}
			}
		}()

		// A message still in flight on A reaches A's reader after the
		// takeover: it is read, and dropped.
		if err := a.Send(toTopic(1, "t", "from A after takeover")); err != nil {
			t.Fatalf("A's stream ended before its last frame was sent: %v", err)
		}
		synctest.Wait()
		if got := received(); got != 1 {
			t.Fatalf("%v message frames received; want A's, read by its reader", got)
		}
		if handled, _ := h.seen(); len(handled) != 0 {
			t.Fatalf("OnMessage ran for %q, sent on the taken-over stream", handled)
		}

		// The client re-sends it on B, with the same seq: B handles it and
		// acks it.
		if err := b.Send(toTopic(1, "t", "from B")); err != nil {
			t.Fatal(err)
		}
		select {
		case seq := <-acks:
			if seq != 1 {
				t.Fatalf("B got ack %d; want 1", seq)
			}
		case <-time.After(waitLong):
			t.Fatal("B's message was not acked")
		}
		synctest.Wait()
		handled, maxSeen := h.seen()
		if len(handled) != 1 || handled[0] != "from B" || maxSeen != 1 {
			t.Fatalf("OnMessage handled %q, at most %d at once; want only B's message, once", handled, maxSeen)
		}
	})
}

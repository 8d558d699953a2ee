package server_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/faultproxy"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Tests of how the server finds a dead or silent peer.

func TestHeartbeatTimeoutSendsGoAwayFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		c, w := b.connect(t, &tetherv1.Hello{ClientId: "mute", HeartbeatInterval: durationpbNew(10 * time.Second)})
		// The client reads but sends nothing.
		<-c.ended
		if st := status.Convert(c.endErr); st.Code() != codes.DeadlineExceeded || !contains(st.Message(), "heartbeat timeout") {
			t.Fatalf("ended with %v; want DEADLINE_EXCEEDED", st)
		}
		var last *tetherv1.ConnectResponse
		for _, f := range c.drain() {
			if f.f.GetPing() == nil {
				last = f.f
			}
		}
		if g := last.GetGoAway(); g.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_HEARTBEAT_TIMEOUT || !contains(g.GetMessage(), "heartbeat timeout") {
			t.Fatalf("last frame %v; want GoAway HEARTBEAT_TIMEOUT", last)
		}
		if d := w.GetDeadAfter().AsDuration(); d != 35*time.Second {
			t.Fatalf("dead_after %v; want 35s", d)
		}
		r, err := tetherv1.NewAdminServiceClient(b.cc).GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		if err != nil || r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_DETACHED {
			t.Fatalf("session after the timeout: %v %v; want DETACHED", r, err)
		}
	})
}

func TestSilenceCountsFromHello(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := tetherv1.NewTetherServiceClient(b.cc).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Hello comes late (within the hello timeout), after more than a
		// dead_after's worth of heartbeats would have passed at 1s.
		time.Sleep(8 * time.Second)
		if err := s.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpbNew(time.Second)})); err != nil {
			t.Fatal(err)
		}
		helloAt := time.Now()
		w, err := s.Recv()
		if err != nil || w.GetWelcome() == nil {
			t.Fatalf("welcome: %v %v", w, err)
		}
		deadAfter := w.GetWelcome().GetDeadAfter().AsDuration()
		for {
			if _, err = s.Recv(); err != nil {
				break
			}
		}
		if st := status.Convert(err); st.Code() != codes.DeadlineExceeded {
			t.Fatalf("ended with %v", st)
		}
		if got := time.Since(helloAt); got != deadAfter {
			t.Fatalf("declared dead %v after hello; want dead_after, %v, counted from hello", got, deadAfter)
		}
	})
}

func TestHalfClosedStreamDetachesWhenItsConnectionDies(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	proxy, err := faultproxy.Start(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	cc, err := grpc.NewClient(proxy.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// grpcurl -d '{"hello":…}' without stdin: hello, then half-close.
	if err := s.Send(hello(&tetherv1.Hello{ClientId: "listener", HeartbeatInterval: durationpbNew(300 * time.Second)})); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	f, err := s.Recv()
	if err != nil || f.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", f, err)
	}
	id := f.GetWelcome().GetSessionId()
	r := awaitEvent(t, n, id, tetherv1.SessionEventKind_SESSION_EVENT_KIND_HALF_CLOSED)
	if st := r.GetSession().GetState(); st != tetherv1.SessionState_SESSION_STATE_CONNECTED {
		t.Fatalf("half-closed session %v; want CONNECTED (it still receives)", st)
	}
	// kill -9 of the client: its connection dies. The session detaches
	// at once, not at the heartbeat deadline (905s here).
	proxy.Reset()
	r = awaitState(t, n, id, tetherv1.SessionState_SESSION_STATE_DETACHED)
	for _, e := range r.GetEvents() {
		if e.GetKind() == tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR {
			t.Fatalf("the flight recorder has an ERROR event: %v", e)
		}
	}
}

// awaitEvent waits until the session's flight recorder has an event of
// kind.
func awaitEvent(t *testing.T, n *node, id string, kind tetherv1.SessionEventKind) *tetherv1.GetSessionResponse {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: id})
		if err == nil {
			for _, e := range r.GetEvents() {
				if e.GetKind() == kind {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s: no %v event within %v (%v)", id, kind, waitLong, err)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition
	}
}

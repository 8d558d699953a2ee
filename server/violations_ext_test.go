package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

func TestProtocolViolations(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxMessageBytes(1024))
	opened := func(t *testing.T) *conn {
		c := n.dial(t, "")
		c.open(&tetherv1.Hello{ClientId: "v"})
		return c
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) *conn
		code codes.Code
		msg  string
	}{
		{"first frame not hello", func(t *testing.T) *conn {
			c := n.dial(t, "")
			c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}})
			return c
		}, codes.InvalidArgument, "the first frame must be hello, got ping"},
		{"empty first frame", func(t *testing.T) *conn {
			c := n.dial(t, "")
			c.send(&tetherv1.ConnectRequest{})
			return c
		}, codes.InvalidArgument, "the first frame must be hello, got an empty frame"},
		{"empty frame", func(t *testing.T) *conn {
			c := opened(t)
			c.send(&tetherv1.ConnectRequest{})
			return c
		}, codes.InvalidArgument, "empty or unknown frame"},
		{"second hello", func(t *testing.T) *conn {
			c := opened(t)
			c.send(hello(&tetherv1.Hello{}))
			return c
		}, codes.InvalidArgument, "hello may be sent only once"},
		{"oversized frame", func(t *testing.T) *conn {
			c := opened(t)
			c.send(toTopic(1, "t", strings.Repeat("x", 100<<10)))
			return c
		}, codes.InvalidArgument, "(Welcome.limits.max_frame_bytes)"},
		{"ack beyond sent", func(t *testing.T) *conn {
			c := opened(t)
			c.send(ack(5))
			return c
		}, codes.InvalidArgument, "ack 5 is beyond the highest seq sent (0)"},
		{"seq skips", func(t *testing.T) *conn {
			c := opened(t)
			c.send(toTopic(3, "t", "x"))
			return c
		}, codes.InvalidArgument, "message seq 3 skips ahead: expected 1"},
		{"bad topic in hello", func(t *testing.T) *conn {
			c := n.dial(t, "")
			c.send(hello(&tetherv1.Hello{Topics: []string{""}}))
			return c
		}, codes.InvalidArgument, "a topic is 1 to 256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			c.expectEnd(tc.code, tc.msg)
		})
	}
	// None of that disturbed another session.
	good := opened(t)
	n.publishTo(t, "v", "still fine")
	if m := good.message(); string(m.GetPayload()) != "still fine" {
		t.Fatalf("got %v", m)
	}
}

// Under OverflowDisconnect a subscriber whose log is full is cut; the
// others flow.
func TestSlowConsumerIsCutOthersFlow(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxOutboundQueue(8), server.WithOverflowPolicy(server.OverflowDisconnect))
	slow := n.dial(t, "")
	ws := slow.open(&tetherv1.Hello{ClientId: "slow", Topics: []string{"feed"}})
	fast := n.dial(t, "")
	fast.open(&tetherv1.Hello{ClientId: "fast", Topics: []string{"feed"}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= 20; i++ {
			m := fast.message()
			if m.GetSeq() != uint64(i) {
				t.Errorf("fast got seq %d, want %d", m.GetSeq(), i)
				return
			}
			fast.send(ack(m.GetSeq()))
		}
	}()
	for i := 1; i <= 20; i++ {
		if _, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{
			Target: &tetherv1.PublishRequest_Topic{Topic: "feed"}, Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		// The fast one keeps up: it acks each message before the next.
		waitFor(t, func() bool { return acked(t, n, "fast") == uint64(i) })
	}
	wg.Wait()
	// The slow one never acked: it gets GoAway SLOW_CONSUMER and
	// RESOURCE_EXHAUSTED, after the messages it had.
	var ga *tetherv1.GoAway
	for ga == nil {
		f := slow.next()
		ga = f.GetGoAway()
	}
	if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_SLOW_CONSUMER {
		t.Fatalf("go_away = %v", ga)
	}
	slow.expectEnd(codes.ResourceExhausted, "slow consumer")
	// Its log kept the newest 8 of the 20 (bounded while it waited): a
	// resume gets them and names the 12 dropped.
	r := n.dial(t, "")
	w := r.open(resumeHello(ws, 0))
	if !w.GetResumed() || w.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP ||
		w.GetLost().GetFirst() != 1 || w.GetLost().GetLast() != 12 {
		t.Fatalf("resume after a slow-consumer cut = %v; want resumed with lost 1..12", w)
	}
	for i := 13; i <= 20; i++ {
		if m := r.message(); m.GetSeq() != uint64(i) || string(m.GetPayload()) != fmt.Sprint(i) {
			t.Fatalf("replay: got %d %q, want %d", m.GetSeq(), m.GetPayload(), i)
		}
	}
}

func acked(t *testing.T, n *node, clientID string) uint64 {
	l, err := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{ClientId: clientID})
	if err != nil || len(l.GetSessions()) == 0 {
		return 0
	}
	return l.GetSessions()[0].GetLastAckedSeq()
}

func TestDrain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t, server.WithDrain(300*time.Millisecond, 1000, time.Second))
		watch, err := healthpb.NewHealthClient(n.cc).Watch(context.Background(), &healthpb.HealthCheckRequest{Service: server.ServiceName})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health before drain: %v %v", r, err)
		}
		var conns []*conn
		for i := range 3 {
			c := n.dial(t, "")
			c.open(&tetherv1.Hello{ClientId: fmt.Sprint("d", i)})
			c.send(toTopic(1, "nowhere", "x"))
			conns = append(conns, c)
		}
		// Every message has reached the server (its ack may still be pending).
		synctest.Wait()
		l, err := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{})
		if err != nil || len(l.GetSessions()) != 3 {
			t.Fatalf("sessions before the drain: %v %v", l, err)
		}
		for _, s := range l.GetSessions() {
			if s.GetLastReceivedSeq() != 1 {
				t.Fatalf("session %v has not received its message", s)
			}
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			done <- n.srv.Drain(ctx)
		}()
		if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health during drain: %v %v", r, err)
		}
		for _, c := range conns {
			var ga *tetherv1.GoAway
			var acked uint64
			for ga == nil {
				f := c.next()
				if a := f.GetAck(); a != nil {
					acked = a.GetSeq()
				}
				ga = f.GetGoAway()
			}
			if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_DRAIN || ga.GetRetryJitter().AsDuration() != time.Second {
				t.Fatalf("go_away = %v", ga)
			}
			if acked != 1 {
				t.Fatalf("in-flight message not acked before go_away (ack %d)", acked)
			}
			c.expectEnd(codes.OK, "")
		}
		// The open health watch does not hold the stop up.
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Drain = %v", err)
			}
		case <-time.After(waitLong):
			t.Fatal("Drain did not return")
		}
		// New sessions are refused while draining or stopped.
		if _, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "t"}}); statusCode(err) != codes.Unavailable {
			t.Fatalf("Publish after drain: %v", err)
		}
	})
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxSessions(2))
	n.dial(t, "").open(&tetherv1.Hello{})
	n.dial(t, "").open(&tetherv1.Hello{})
	c := n.dial(t, "")
	c.send(hello(&tetherv1.Hello{}))
	c.expectEnd(codes.Unavailable, "limit of 2 sessions")
}

type rejecting struct{ server.Router }

func (rejecting) OnConnect(_ context.Context, s *server.Session) error {
	if s.ClientID() == "banned" {
		return status.Error(codes.PermissionDenied, "client banned: ask an operator")
	}
	return nil
}

func TestHandlerRejectsConnect(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithHandler(rejecting{}))
	c := n.dial(t, "")
	c.send(hello(&tetherv1.Hello{ClientId: "banned"}))
	c.expectEnd(codes.PermissionDenied, "client banned")
	l, err := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{})
	if err != nil || len(l.GetSessions()) != 1 || l.GetSessions()[0].GetState() != tetherv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("a rejected session stayed open, or vanished from Admin at once: %v %v", l, err)
	}
	n.dial(t, "").open(&tetherv1.Hello{ClientId: "welcome"})
}

package server_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

func TestHelloWelcome(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "dev-1", Topics: []string{"news", "alerts"}, Metadata: map[string]string{"os": "linux"}})
	if w.GetSessionId() == "" || len(w.GetResumeToken()) < 40 {
		t.Fatalf("welcome lacks a session id or a long resume token: %v", w)
	}
	if w.GetResumed() || w.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED {
		t.Fatalf("fresh session says resumed=%v status=%v", w.GetResumed(), w.GetResumeStatus())
	}
	if w.GetServerId() != "test-node" || w.GetHeartbeatInterval().AsDuration() != time.Minute || w.GetHeartbeatMisses() != 3 {
		t.Fatalf("welcome server/heartbeat = %q %v × %d", w.GetServerId(), w.GetHeartbeatInterval().AsDuration(), w.GetHeartbeatMisses())
	}
	if w.GetKeepaliveMinTime().AsDuration() != 10*time.Second || w.GetLimits().GetMaxMessageBytes() != 1<<20 {
		t.Fatalf("welcome floor/limits = %v %v", w.GetKeepaliveMinTime().AsDuration(), w.GetLimits())
	}
	if got := w.GetTopics(); len(got) != 2 || got[0] != "alerts" || got[1] != "news" {
		t.Fatalf("welcome topics = %v", got)
	}
	resp, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetSession(); s.GetClientId() != "dev-1" || s.GetState() != tetherv1.SessionState_SESSION_STATE_CONNECTED || s.GetMetadata()["os"] != "linux" {
		t.Fatalf("GetSession = %v", s)
	}
	if len(resp.GetEvents()) == 0 || resp.GetEvents()[0].GetKind() != tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED {
		t.Fatalf("flight recorder = %v", resp.GetEvents())
	}
}

func TestHeartbeatIntervalIsClamped(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	for _, tc := range []struct{ ask, want time.Duration }{
		{time.Millisecond, 5 * time.Second},
		{time.Hour, 5 * time.Minute},
		{20 * time.Second, 20 * time.Second},
	} {
		c := n.dial(t, "")
		w := c.open(&tetherv1.Hello{HeartbeatInterval: durationpbNew(tc.ask)})
		if got := w.GetHeartbeatInterval().AsDuration(); got != tc.want {
			t.Errorf("asked %v, granted %v, want %v", tc.ask, got, tc.want)
		}
	}
}

func TestPingPongBothWays(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		c := n.dial(t, "")
		c.open(&tetherv1.Hello{HeartbeatInterval: durationpbNew(5 * time.Second)})
		sent := timestamppb.New(time.Unix(1700000000, 0))
		c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 42, SentAt: sent}}})
		p := c.next().GetPong()
		if p.GetId() != 42 || !p.GetSentAt().AsTime().Equal(sent.AsTime()) {
			t.Fatalf("pong = %v, want id 42 echoing sent_at", p)
		}
		// The server pings a silent stream: one interval (5s, the minimum)
		// after its last write, or 1.5 intervals after the client's last
		// ping (TestServerLeavesTheHeartbeatToAPingingClient). Answer it and
		// see the RTT in the flight recorder.
		pinged := time.Now()
		var ping *tetherv1.Ping
		timer := time.NewTimer(waitLong)
		defer timer.Stop()
		for ping == nil {
			select {
			case f := <-c.frames:
				ping = f.GetPing()
			case <-timer.C:
				t.Fatal("no server ping within 10s of a 5s interval")
			}
		}
		if d := time.Since(pinged); d < 5*time.Second || d > 7500*time.Millisecond {
			t.Fatalf("the server pinged %v after the client's ping; want 5s to 7.5s", d)
		}
		const rtt = 40 * time.Millisecond // the network, in fake time
		time.Sleep(rtt)
		c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: ping.GetId(), SentAt: ping.GetSentAt()}}})
		synctest.Wait()
		l, err := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{})
		if err != nil || len(l.GetSessions()) != 1 || l.GetSessions()[0].GetLastRtt().AsDuration() != rtt {
			t.Fatalf("after the pong: %v %v; want one session with its last RTT, %v", l, err, rtt)
		}
	})
}

func TestMessagesBothWaysWithAcks(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	sub := n.dial(t, "")
	sub.open(&tetherv1.Hello{ClientId: "sub", Topics: []string{"t"}})
	pub := n.dial(t, "")
	pub.open(&tetherv1.Hello{ClientId: "pub"})
	const count = 200
	for i := 1; i <= count; i++ {
		pub.send(toTopic(uint64(i), "t", fmt.Sprint("m", i)))
	}
	// Acks are cumulative and batched: the last one covers everything.
	var last uint64
	for last < count {
		a := pub.ackFrame()
		if a.GetSeq() <= last {
			t.Fatalf("ack went from %d to %d", last, a.GetSeq())
		}
		last = a.GetSeq()
	}
	for i := 1; i <= count; i++ {
		m := sub.message()
		if m.GetSeq() != uint64(i) || string(m.GetPayload()) != fmt.Sprint("m", i) || m.GetTopic() != "t" || m.GetSource().GetClientId() != "pub" {
			t.Fatalf("message %d = %v", i, m)
		}
	}
	sub.send(ack(count))
	waitFor(t, func() bool {
		l, _ := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{ClientId: "sub"})
		return len(l.GetSessions()) == 1 && l.GetSessions()[0].GetLastAckedSeq() == count && l.GetSessions()[0].GetUnacked() == 0
	})
}

func TestPublishToTopicSessionAndClient(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		a := n.dial(t, "")
		wa := a.open(&tetherv1.Hello{ClientId: "a", Topics: []string{"fleet"}})
		b := n.dial(t, "")
		b.open(&tetherv1.Hello{ClientId: "b", Topics: []string{"fleet"}})
		ctx := context.Background()
		check := func(req *tetherv1.PublishRequest, want uint32) {
			t.Helper()
			resp, err := n.tether().Publish(ctx, req)
			if err != nil || resp.GetDelivered() != want {
				t.Fatalf("Publish(%v) = %v, %v; want %d delivered", req, resp, err, want)
			}
		}
		check(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "fleet"}, Payload: []byte("all")}, 2)
		check(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_SessionId{SessionId: wa.GetSessionId()}, Payload: []byte("to-a")}, 1)
		check(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: "b"}, Payload: []byte("to-b")}, 1)
		check(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "nobody"}, Payload: []byte("x")}, 0)
		for _, want := range []string{"all", "to-a"} {
			if m := a.message(); string(m.GetPayload()) != want {
				t.Fatalf("a got %q, want %q", m.GetPayload(), want)
			}
		}
		for _, want := range []string{"all", "to-b"} {
			if m := b.message(); string(m.GetPayload()) != want {
				t.Fatalf("b got %q, want %q", m.GetPayload(), want)
			}
		}
		// Idempotency: the same key twice delivers once.
		req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: "a"}, Payload: []byte("once"), IdempotencyKey: "k1"}
		check(req, 1)
		if resp, err := n.tether().Publish(ctx, req); err != nil || !resp.GetDuplicate() || resp.GetDelivered() != 0 {
			t.Fatalf("repeat Publish = %v, %v; want duplicate", resp, err)
		}
		if m := a.message(); string(m.GetPayload()) != "once" {
			t.Fatalf("a got %q", m.GetPayload())
		}
		a.noFrame()
		// A key whose Publish reached no session is not kept: the retry,
		// once the client id is there, is delivered.
		absent := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: "late"}, Payload: []byte("late"), IdempotencyKey: "k2"}
		check(absent, 0)
		late := n.dial(t, "")
		late.open(&tetherv1.Hello{ClientId: "late"})
		check(absent, 1)
		if m := late.message(); string(m.GetPayload()) != "late" {
			t.Fatalf("late got %q", m.GetPayload())
		}
		// No target is a clear error.
		_, err := n.tether().Publish(ctx, &tetherv1.PublishRequest{Payload: []byte("x")})
		if code := statusCode(err); code != codes.InvalidArgument {
			t.Fatalf("Publish without target: %v", err)
		}
	})
}

func TestRequestReplyByCorrelationID(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.dial(t, "")
	svc.open(&tetherv1.Hello{ClientId: "svc", Topics: []string{"svc.echo"}})
	caller := n.dial(t, "")
	caller.open(&tetherv1.Hello{ClientId: "caller"})
	caller.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: 1, Target: &tetherv1.ClientMessage_Topic{Topic: "svc.echo"}, Payload: []byte("hi"), CorrelationId: "req-1"}}})
	req := svc.message()
	if req.GetCorrelationId() != "req-1" || string(req.GetPayload()) != "hi" {
		t.Fatalf("service got %v", req)
	}
	// The reply has no target: it returns by correlation id.
	svc.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: 1, Payload: []byte("HI"), CorrelationId: "req-1"}}})
	rep := caller.message()
	if rep.GetCorrelationId() != "req-1" || string(rep.GetPayload()) != "HI" || rep.GetSource().GetClientId() != "svc" {
		t.Fatalf("caller got %v", rep)
	}
	// A reply to an unknown request is a non-fatal error.
	svc.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: 2, Payload: []byte("?"), CorrelationId: "nope"}}})
	for {
		f := svc.next()
		if e := f.GetError(); e != nil {
			if codes.Code(e.GetCode()) != codes.NotFound || e.GetSeq() != 2 {
				t.Fatalf("error frame = %v", e)
			}
			break
		}
	}
}

func TestInProcessPublishAndHandler(t *testing.T) {
	t.Parallel()
	got := make(chan *server.Message, 1)
	h := &echoHandler{got: got}
	n := startNode(t, server.WithHandler(h))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "dev"})
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Payload: []byte("ping?"), CorrelationId: "c1", Target: &tetherv1.ClientMessage_Topic{Topic: "app"}}}})
	m := <-got
	if m.Seq != 1 || string(m.Payload) != "ping?" {
		t.Fatalf("handler got %+v", m)
	}
	rep := c.message()
	if rep.GetCorrelationId() != "c1" || string(rep.GetPayload()) != "pong!" {
		t.Fatalf("reply = %v", rep)
	}
	k, err := n.srv.Publish(context.Background(), brokerSession(w.GetSessionId()), []byte("push"), "")
	if err != nil || k != 1 {
		t.Fatalf("in-process Publish = %d, %v", k, err)
	}
	if m := c.message(); string(m.GetPayload()) != "push" {
		t.Fatalf("push = %v", m)
	}
}

type echoHandler struct {
	server.Router
	got chan *server.Message
}

func (h *echoHandler) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	h.got <- m
	_, err := s.Send(ctx, []byte("pong!"), server.WithCorrelationID(m.CorrelationID))
	return err
}

// waitFor polls cond until it holds, failing after waitLong: a wait on an
// observable condition with a bound, not a guess of how long something
// takes. Inside a synctest bubble its polls cost no real time.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within", waitLong)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDirectMessageToNobodyIsReported(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "lonely"})
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: 1, Target: &tetherv1.ClientMessage_ClientId{ClientId: "ghost"}, Payload: []byte("?")}}})
	for {
		if e := c.next().GetError(); e != nil {
			if codes.Code(e.GetCode()) != codes.NotFound || e.GetSeq() != 1 || !contains(e.GetMessage(), `client "ghost"`) {
				t.Fatalf("error frame = %v", e)
			}
			return
		}
	}
}

func TestReplyByCorrelationIDIsNeverMisrouted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		svc := n.dial(t, "")
		svc.open(&tetherv1.Hello{ClientId: "svc", Topics: []string{"svc"}})
		alice := n.dial(t, "alice")
		alice.open(&tetherv1.Hello{ClientId: "alice"})
		mallory := n.dial(t, "mallory")
		mallory.open(&tetherv1.Hello{ClientId: "mallory"})
		req := func(c *conn, payload string) {
			c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
				Seq: 1, Target: &tetherv1.ClientMessage_Topic{Topic: "svc"}, Payload: []byte(payload), CorrelationId: "1"}}})
		}
		req(alice, "x")
		m1 := svc.message()
		req(mallory, "y") // the same correlation id
		svc.message()
		svc.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: 1, Payload: []byte("secret for x"), CorrelationId: "1"}}})
		for {
			f := svc.next()
			if e := f.GetError(); e != nil {
				if codes.Code(e.GetCode()) != codes.FailedPrecondition {
					t.Fatalf("ambiguous reply: %v", e)
				}
				break
			}
		}
		mallory.noFrame()
		// Naming the requester works.
		svc.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: 2, Target: &tetherv1.ClientMessage_SessionId{SessionId: m1.GetSource().GetSessionId()}, Payload: []byte("secret for x"), CorrelationId: "1"}}})
		if m := alice.message(); string(m.GetPayload()) != "secret for x" {
			t.Fatalf("alice got %v", m)
		}
		mallory.noFrame()
	})
}

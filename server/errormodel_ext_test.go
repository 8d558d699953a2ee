package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// Tests of the error model (tether_service.proto: how a stream ends) and of
// the limits Welcome announces.

// levelRecorder is a slog.Handler that keeps the levels of what is logged.
type levelRecorder struct {
	mu     sync.Mutex
	errors []string
}

func (r *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *levelRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *levelRecorder) WithGroup(string) slog.Handler            { return r }
func (r *levelRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError {
		r.mu.Lock()
		r.errors = append(r.errors, rec.Message)
		r.mu.Unlock()
	}
	return nil
}

func (r *levelRecorder) errorsLogged() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

// withUnknown is f with raw bytes appended to its wire form: how a test
// sends bytes that are not a protobuf message through a generated stub.
func withUnknown[M proto.Message](m M, raw []byte) M {
	m.ProtoReflect().SetUnknown(raw)
	return m
}

func TestUndecodableFrameEndsWithInvalidArgumentNamingTheField(t *testing.T) {
	t.Parallel()
	logs := &levelRecorder{}
	n := startNode(t, server.WithLogger(slog.New(logs)))
	for _, tc := range []struct {
		name  string
		frame *tetherv1.ConnectRequest
		want  string
	}{
		// A field tag cut short: not a protobuf message at all.
		{"bytes that are not protobuf", withUnknown(&tetherv1.ConnectRequest{}, []byte{0xff}),
			"undecodable frame: field ConnectRequest has a malformed field tag"},
		// Field 4 (message) declares 100 bytes and carries 2.
		{"a message field cut short", withUnknown(&tetherv1.ConnectRequest{}, []byte{4<<3 | 2, 100, 1, 2}),
			"undecodable frame: field ConnectRequest.message is malformed"},
		// ClientMessage.correlation_id (8) with invalid UTF-8, inside field 4.
		{"a string that is not UTF-8", withUnknown(&tetherv1.ConnectRequest{},
			protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType),
				protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), []byte{0xc3, 0x28}))),
			"undecodable frame: field ConnectRequest.message.correlation_id is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// After hello...
			c := n.dial(t, "")
			c.open(&tetherv1.Hello{})
			c.send(tc.frame)
			c.expectEnd(codes.InvalidArgument, tc.want)
			// ...and as the first frame.
			c = n.dial(t, "")
			c.send(tc.frame)
			c.expectEnd(codes.InvalidArgument, tc.want)
		})
	}
	if errs := logs.errorsLogged(); len(errs) > 0 {
		t.Fatalf("malformed frames were logged at ERROR: %q", errs)
	}
}

func TestUndecodablePublishIsInvalidArgument(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	// PublishRequest.content_type (5) with invalid UTF-8.
	req := withUnknown(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "t"}},
		protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), []byte{0xff}))
	_, err := n.tether().Publish(context.Background(), req)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "field PublishRequest.content_type is not valid UTF-8") {
		t.Fatalf("Publish: %v; want INVALID_ARGUMENT naming PublishRequest.content_type", err)
	}
	// The marker field alone is a request like any other: it cannot make
	// a valid request fail other than with INVALID_ARGUMENT.
	if _, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "t"}}); err != nil {
		t.Fatalf("a valid Publish: %v", err)
	}
}

// frameOfSize is a message frame to topic "t" whose serialized size is
// exactly n bytes.
func frameOfSize(t *testing.T, n int) *tetherv1.ConnectRequest {
	t.Helper()
	f := toTopic(0, "t", "")
	for range 10 { // a length's varint may grow by a byte: adjust again
		m := f.GetMessage()
		m.Payload = bytes.Repeat([]byte("x"), len(m.Payload)+n-proto.Size(f))
	}
	if proto.Size(f) != n {
		t.Fatalf("frame of %d bytes; want %d", proto.Size(f), n)
	}
	return f
}

func TestFrameSizeLimitIsTheAnnouncedOne(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxMessageBytes(1024))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{})
	limit := int(w.GetLimits().GetMaxFrameBytes())
	if limit <= 1024 {
		t.Fatalf("limits.max_frame_bytes %d; want room above max_message_bytes 1024", limit)
	}
	// A frame of exactly max_frame_bytes is read: its payload is above
	// max_message_bytes, so the message fails, and the stream goes on.
	c.send(frameOfSize(t, limit))
	if e := c.next().GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument || e.GetSeq() != 1 ||
		!strings.Contains(e.GetMessage(), "(Welcome.limits.max_message_bytes)") {
		t.Fatalf("got %v; want a failed message naming Welcome.limits.max_message_bytes", e)
	}
	// One byte more ends the stream, naming the field. So does twice the
	// limit minus one (gRPC's own limit is above it).
	for _, size := range []int{limit + 1, 2*limit - 1} {
		c := n.dial(t, "")
		c.open(&tetherv1.Hello{})
		c.send(frameOfSize(t, size))
		c.expectEnd(codes.InvalidArgument, "exceeds the limit of "+strconv.Itoa(limit)+" bytes (Welcome.limits.max_frame_bytes)")
	}
}

func TestOversizedPayloadIsAFailedMessageNotACutStream(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxMessageBytes(1024))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{Topics: []string{"t"}})
	if got := w.GetLimits().GetMaxMessageBytes(); got != 1024 {
		t.Fatalf("limits.max_message_bytes %d; want 1024", got)
	}
	c.send(toTopic(1, "t", strings.Repeat("x", 1025)))
	e := c.next().GetError()
	if codes.Code(e.GetCode()) != codes.InvalidArgument || e.GetSeq() != 1 ||
		!strings.Contains(e.GetMessage(), "payload of 1025 bytes exceeds the limit of 1024 bytes (Welcome.limits.max_message_bytes)") {
		t.Fatalf("got %v; want Error{seq 1, INVALID_ARGUMENT naming the limit}", e)
	}
	// Failed, so acked: the client does not re-send it.
	if a := c.ackFrame(); a.GetSeq() != 1 {
		t.Fatalf("ack %d; want 1", a.GetSeq())
	}
	// The stream goes on: the next message is handled.
	c.send(toTopic(2, "t", strings.Repeat("y", 1024)))
	if m := c.message(); len(m.GetPayload()) != 1024 {
		t.Fatalf("got %v", m)
	}
}

func TestWelcomeAnnouncesTheEnforcedLimits(t *testing.T) {
	t.Parallel()
	p := profile.Datacenter()
	p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0
	n := startNode(t, server.WithProfile(p), server.WithFrameRate(5, 10), server.WithMaxTopics(7),
		server.WithMaxOutboundQueue(9), server.WithMaxOutboundBytes(9000), server.WithOverflowPolicy(server.OverflowDropOldest), server.WithMaxMessageBytes(2048))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{HeartbeatInterval: durationpbNew(time.Millisecond)})
	l := w.GetLimits()
	if l.GetMaxMessageBytes() != 2048 || l.GetMaxTopics() != 7 || l.GetMaxOutboundQueue() != 9 ||
		l.GetMaxOutboundBytes() != 9000 || l.GetOverflowPolicy() != tetherv1.OverflowPolicy_OVERFLOW_POLICY_DROP_OLDEST ||
		l.GetMaxFramesPerSecond() != 5 || l.GetMaxFrameBurst() != 10 || l.GetMaxFrameBytes() <= 2048 ||
		l.GetMinHeartbeatInterval().AsDuration() != p.Heartbeat.Min || l.GetMaxHeartbeatInterval().AsDuration() != p.Heartbeat.Max {
		t.Fatalf("limits %v; want the configured ones (heartbeat %v..%v)", l, p.Heartbeat.Min, p.Heartbeat.Max)
	}
	// A Hello below the bounds is clamped, not refused: Welcome says so.
	if got := w.GetHeartbeatInterval().AsDuration(); got != p.Heartbeat.Min {
		t.Fatalf("heartbeat_interval %v for a 1ms request; want the minimum %v", got, p.Heartbeat.Min)
	}
	c2 := n.dial(t, "")
	if got := c2.open(&tetherv1.Hello{HeartbeatInterval: durationpbNew(time.Hour)}).GetHeartbeatInterval().AsDuration(); got != p.Heartbeat.Max {
		t.Fatalf("heartbeat_interval %v for a 1h request; want the maximum %v", got, p.Heartbeat.Max)
	}
	// The frame rate is the announced one, and paced: 12 frames take the
	// burst of 10 and two more tokens at 5/s, so the 12th is read no
	// sooner than 400 ms after the first, and the stream goes on.
	start := time.Now()
	for i := range 12 {
		c2.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: uint64(i + 1)}}})
	}
	for {
		if p := c2.next().GetPong(); p.GetId() == 12 {
			break
		}
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("12 frames at 5/s, bursts of 10, were read in %v; want at least 400ms", d)
	}
}

func TestResumeKeepsTheSessionsClientID(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "original"})
	if w.GetClientId() != "original" {
		t.Fatalf("welcome.client_id %q; want original", w.GetClientId())
	}
	c.close()
	c = n.dial(t, "")
	r := c.open(&tetherv1.Hello{ClientId: "another", Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w.GetResumeToken()}})
	if !r.GetResumed() || r.GetClientId() != "original" {
		t.Fatalf("resumed %v with client_id %q; want the session's own, original", r.GetResumed(), r.GetClientId())
	}
}

func TestStaleAckIsIgnored(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "acker"})
	for _, p := range []string{"a", "b"} {
		if _, err := n.srv.Publish(context.Background(), brokerClient("acker"), []byte(p), ""); err != nil {
			t.Fatal(err)
		}
		c.message()
	}
	c.send(ack(2))
	c.send(ack(1)) // overtaken: ignored, the stream goes on
	c.send(toTopic(0, "nobody-listens", "x"))
	if a := c.ackFrame(); a.GetSeq() != 1 {
		t.Fatalf("ack %d; want 1", a.GetSeq())
	}
}

// failingBroker fails to bind topics that start with "fail".
type failingBroker struct{ broker.Broker }

func (b failingBroker) Bind(ctx context.Context, a broker.Address) error {
	if a.Kind == broker.KindTopic && strings.HasPrefix(a.Name, "fail") {
		return errors.New("the broker refused")
	}
	return b.Broker.Bind(ctx, a)
}

// denyTopics forbids topics that start with "secret".
type denyTopics struct{ server.AllowAll }

func (denyTopics) Subscribe(_ context.Context, topic string) error {
	if strings.HasPrefix(topic, "secret") {
		return status.Errorf(codes.PermissionDenied, "topic %q is not yours", topic)
	}
	return nil
}

func TestSubscribeErrorsNameTheTopicAndTheRequest(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxTopics(3), server.WithAuthorizer(denyTopics{}),
		server.WithBroker(failingBroker{memory.New()}))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{Topics: []string{"held"}})
	for i, tc := range []struct {
		topics []string
		code   codes.Code
		topic  string
		sub    string
	}{
		{[]string{"ok1", "has space"}, codes.InvalidArgument, "has space", "may not contain spaces"},
		{[]string{"ok1", "secret-x"}, codes.PermissionDenied, "secret-x", "not yours"},
		{[]string{"ok1", "ok2", "ok3"}, codes.InvalidArgument, "ok3", "(Welcome.limits.max_topics)"},
		{[]string{"ok1", "fail-bind"}, codes.Unavailable, "fail-bind", "the broker refused"},
	} {
		id := uint64(100 + i)
		c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: tc.topics, RequestId: id}}})
		e := c.next().GetError()
		if codes.Code(e.GetCode()) != tc.code || e.GetTopic() != tc.topic || e.GetRequestId() != id || e.GetSeq() != 0 || !strings.Contains(e.GetMessage(), tc.sub) {
			t.Fatalf("subscribe %q: got %v; want %v naming topic %q and request %d", tc.topics, e, tc.code, tc.topic, id)
		}
	}
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Unsubscribe{Unsubscribe: &tetherv1.Unsubscribe{Topics: []string{"held", ""}, RequestId: 7}}})
	if e := c.next().GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument || e.GetRequestId() != 7 || e.GetTopic() != "" || !strings.Contains(e.GetMessage(), "1 to 256 bytes") {
		t.Fatalf("unsubscribe with an empty topic: got %v", e)
	}
	// All or nothing: the session holds what it held, and the stream
	// goes on.
	r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetSession().GetTopics(); len(got) != 1 || got[0] != "held" {
		t.Fatalf("topics %q after refused subscribes; want [held]", got)
	}
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: []string{"ok1"}}}})
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Unsubscribe{Unsubscribe: &tetherv1.Unsubscribe{Topics: []string{"never-held"}}}})
	// The reader handles frames in order: once the pong comes, both were
	// handled, and neither was answered.
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}})
	if f := c.next(); f.GetPong().GetId() != 1 {
		t.Fatalf("got %v; want the pong", f)
	}
	if _, err := n.srv.Publish(context.Background(), broker.Topic("ok1"), []byte("in"), ""); err != nil {
		t.Fatal(err)
	}
	if m := c.message(); string(m.GetPayload()) != "in" {
		t.Fatalf("got %v", m)
	}
}

func TestHelloTopicsEndTheStreamWithTheSubscribeCodes(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxTopics(2), server.WithAuthorizer(denyTopics{}),
		server.WithBroker(failingBroker{memory.New()}))
	for _, tc := range []struct {
		topics []string
		code   codes.Code
		sub    string
	}{
		{[]string{"has space"}, codes.InvalidArgument, "may not contain spaces"},
		{[]string{"secret-x"}, codes.PermissionDenied, "not yours"},
		{[]string{"a", "b", "c"}, codes.InvalidArgument, "(Welcome.limits.max_topics)"},
		{[]string{"fail-bind"}, codes.Unavailable, "the broker refused"},
	} {
		c := n.dial(t, "")
		c.send(hello(&tetherv1.Hello{Topics: tc.topics}))
		c.expectEnd(tc.code, tc.sub)
	}
}

func TestPublishDeliveredCountsDetachedSessionsAndNotUnknownOnes(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "away"})
	c.close()
	awaitState(t, n, w.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
	pub := func(id string) uint32 {
		r, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: id}, Payload: []byte("p")})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetDelivered()
	}
	if d := pub("away"); d != 1 {
		t.Fatalf("delivered %d to a detached session; want 1 (it gets it on resume)", d)
	}
	if d := pub("nobody"); d != 0 {
		t.Fatalf("delivered %d to an unknown client id; want 0", d)
	}
	// The same unknown target from a session: a failed message, NOT_FOUND.
	s := n.dial(t, "")
	s.open(&tetherv1.Hello{})
	s.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_ClientId{ClientId: "nobody"}}}})
	if e := s.next().GetError(); codes.Code(e.GetCode()) != codes.NotFound || e.GetSeq() != 1 {
		t.Fatalf("got %v; want NOT_FOUND for seq 1", e)
	}
	// The detached session gets the published message when it resumes.
	r := n.dial(t, "")
	r.open(&tetherv1.Hello{ClientId: "away", Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w.GetResumeToken()}})
	if m := r.message(); string(m.GetPayload()) != "p" {
		t.Fatalf("got %v", m)
	}
}

// awaitState waits until the session is in state want.
func awaitState(t *testing.T, n *node, id string, want tetherv1.SessionState) *tetherv1.GetSessionResponse {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: id})
		if err == nil && r.GetSession().GetState() == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s: %v %v; want %v within %v", id, r.GetSession().GetState(), err, want, waitLong)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition
	}
}

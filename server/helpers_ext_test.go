package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// Real-time bounds, in the grpc-go test convention: long for what must
// happen, short for what must not.
const (
	waitLong  = 10 * time.Second
	waitShort = 100 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// principalKey is the metadata key the tests use to name a principal.
const principalKey = "x-test-principal"

func principalFromMD(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(principalKey); len(v) > 0 {
		return v[0]
	}
	return ""
}

// node is a tether server on a real loopback listener.
type node struct {
	srv  *server.Server
	addr string
	cc   *grpc.ClientConn
}

func startNode(t *testing.T, opts ...server.Option) *node {
	t.Helper()
	opts = append([]server.Option{server.WithPrincipal(principalFromMD), server.WithServerID("test-node")}, opts...)
	srv, addr := tethertest.Serve(t, opts...)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &node{srv: srv, addr: addr, cc: cc}
}

// startNodeInBubble is startNode on an in-memory bufconn listener, for a
// test inside a testing/synctest bubble: the conn helpers (next, end,
// noFrame) then wait in fake time. n.addr is empty: nothing else can dial
// it.
func startNodeInBubble(t *testing.T, opts ...server.Option) *node {
	t.Helper()
	opts = append([]server.Option{server.WithPrincipal(principalFromMD), server.WithServerID("test-node")}, opts...)
	b := startBubbleNode(t, opts...)
	return &node{srv: b.srv, cc: b.cc}
}

func (n *node) tether() tetherv1.TetherServiceClient { return tetherv1.NewTetherServiceClient(n.cc) }
func (n *node) admin() tetherv1.AdminServiceClient   { return tetherv1.NewAdminServiceClient(n.cc) }

// conn is one raw Connect stream, driven frame by frame as a generated stub
// would.
type conn struct {
	t      *testing.T
	stream tetherv1.TetherService_ConnectClient
	cancel context.CancelFunc
	frames chan *tetherv1.ConnectResponse
	err    chan error
	acked  uint64 // the highest Ack seq next has returned or skipped
}

// dial opens a Connect stream on n (as principal, if not empty).
func (n *node) dial(t *testing.T, principal string) *conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if principal != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, principalKey, principal)
	}
	s, err := n.tether().Connect(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Connect: %v", err)
	}
	c := &conn{t: t, stream: s, cancel: cancel, frames: make(chan *tetherv1.ConnectResponse, 4096), err: make(chan error, 1)}
	go func() {
		for {
			f, err := s.Recv()
			if err != nil {
				c.err <- err
				close(c.frames)
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *conn) close() {
	c.cancel()
	for range c.frames {
	}
}

func (c *conn) send(f *tetherv1.ConnectRequest) {
	c.t.Helper()
	if err := c.stream.Send(f); err != nil && !errors.Is(err, io.EOF) {
		c.t.Fatalf("send %v: %v", f, err)
	}
}

// next returns the next frame, skipping pings unless wantPings.
func (c *conn) next() *tetherv1.ConnectResponse {
	c.t.Helper()
	timer := time.NewTimer(waitLong)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("stream ended while waiting for a frame: %v", <-c.err)
			}
			if f.GetPing() != nil {
				continue
			}
			c.acked = max(c.acked, f.GetAck().GetSeq())
			return f
		case <-timer.C:
			c.t.Fatalf("no frame within %v", waitLong)
		}
	}
}

// end waits for the stream to end and returns its status.
func (c *conn) end() *status.Status {
	c.t.Helper()
	timer := time.NewTimer(waitLong)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				err := <-c.err
				if errors.Is(err, io.EOF) {
					return status.New(codes.OK, "")
				}
				return status.Convert(err)
			}
		case <-timer.C:
			c.t.Fatalf("stream did not end within %v", waitLong)
		}
	}
}

// expectEnd asserts the stream ends with code and a message containing sub.
func (c *conn) expectEnd(code codes.Code, sub string) {
	c.t.Helper()
	st := c.end()
	if st.Code() != code || !contains(st.Message(), sub) {
		c.t.Fatalf("stream ended with %v %q; want %v containing %q", st.Code(), st.Message(), code, sub)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func hello(h *tetherv1.Hello) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: h}}
}

func ack(seq uint64) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: seq}}}
}

func toTopic(seq uint64, topic, payload string) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: topic}, Payload: []byte(payload)}}}
}

// open sends hello and returns the welcome.
func (c *conn) open(h *tetherv1.Hello) *tetherv1.Welcome {
	c.t.Helper()
	if h.HeartbeatInterval == nil {
		h.HeartbeatInterval = durationpb.New(time.Minute)
	}
	c.send(hello(h))
	f := c.next()
	w := f.GetWelcome()
	if w == nil {
		c.t.Fatalf("first frame is %v, want welcome", f)
	}
	return w
}

// message waits for the next server message.
func (c *conn) message() *tetherv1.ServerMessage {
	c.t.Helper()
	for {
		f := c.next()
		if m := f.GetMessage(); m != nil {
			return m
		}
		if f.GetAck() == nil {
			c.t.Fatalf("got %v, want a message", f)
		}
	}
}

// ackFrame waits for the next server ack, skipping messages.
func (c *conn) ackFrame() *tetherv1.Ack {
	c.t.Helper()
	for {
		f := c.next()
		if a := f.GetAck(); a != nil {
			return a
		}
		if f.GetMessage() == nil {
			c.t.Fatalf("got %v, want an ack", f)
		}
	}
}

// noFrame asserts nothing but pings and acks arrives for waitShort. Inside
// a synctest bubble that is exact: the fake waitShort passes only once every
// goroutine of the test is idle, so anything on its way has arrived.
func (c *conn) noFrame() {
	c.t.Helper()
	timer := time.NewTimer(waitShort)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if ok && f.GetPing() == nil && f.GetAck() == nil {
				c.t.Fatalf("unexpected frame %v", f)
			}
			if !ok {
				return
			}
		case <-timer.C:
			return
		}
	}
}

func durationpbNew(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func statusCode(err error) codes.Code { return status.Code(err) }

func brokerSession(id string) broker.Address { return broker.Session(id) }
func brokerClient(id string) broker.Address  { return broker.Client(id) }

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

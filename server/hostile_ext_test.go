package server_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// outcome is what a hostile input got: how the server answered, with which
// code and message.
type outcome struct {
	how  string // "stream ended", "error frame", "welcome", "ack", "survived", "delivered", "Publish"
	code codes.Code
	msg  string
}

func (o outcome) String() string { return fmt.Sprintf("%s: %v %q", o.how, o.code, o.msg) }

func ended(c *conn) outcome {
	st := c.end()
	return outcome{"stream ended", st.Code(), st.Message()}
}

// nextError waits for a non-fatal Error frame, skipping acks.
func nextError(t *testing.T, c *conn) outcome {
	t.Helper()
	for {
		f := c.next()
		if e := f.GetError(); e != nil {
			return outcome{"error frame", codes.Code(e.GetCode()), e.GetMessage()}
		}
		if f.GetAck() == nil {
			t.Fatalf("got %v, want an Error frame", f)
		}
	}
}

// errorFrame is nextError, then checks that the stream goes on.
func errorFrame(t *testing.T, c *conn) outcome {
	t.Helper()
	o := nextError(t, c)
	alive(t, c, 4242)
	return o
}

func welcomed(w *tetherv1.Welcome) outcome {
	return outcome{"welcome", codes.OK, fmt.Sprintf("%v resumed=%v", w.GetResumeStatus(), w.GetResumed())}
}

func unary(err error) outcome {
	st := status.Convert(err)
	return outcome{"Publish", st.Code(), st.Message()}
}

func ping(id uint64) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: id}}}
}

func subscribe(topics ...string) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: topics}}}
}

func message(m *tetherv1.ClientMessage) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: m}}
}

// alive asserts the stream still answers a ping.
func alive(t *testing.T, c *conn, id uint64) {
	t.Helper()
	c.send(ping(id))
	for {
		f := c.next()
		if p := f.GetPong(); p != nil && p.GetId() == id {
			return
		}
		if f.GetError() != nil || f.GetGoAway() != nil {
			t.Fatalf("got %v while waiting for pong %d", f, id)
		}
	}
}

// rawBytes is a length-delimited field, written as protowire bytes: it
// reaches the server even when it is not valid UTF-8, which the Go
// generated code refuses to marshal.
func rawBytes(num protowire.Number, b []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
}

// withRaw appends raw wire bytes to m's marshalled form.
func withRaw[M proto.Message](m M, raw ...[]byte) M {
	var all []byte
	for _, r := range raw {
		all = append(all, r...)
	}
	m.ProtoReflect().SetUnknown(append(m.ProtoReflect().GetUnknown(), all...))
	return m
}

// dialFixed opens a Connect stream as principal "" on a connection of its
// own whose flow-control windows stay at 64 KiB (no BDP growth), sends
// hello and reads the Welcome, and from then on reads nothing: the server's
// writer blocks once some 128 KiB (the window plus grpc's write quota) wait.
func (n *node) dialFixed(t *testing.T, h *tetherv1.Hello) (tetherv1.TetherService_ConnectClient, context.CancelFunc, *tetherv1.Welcome) {
	t.Helper()
	cc, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.HeartbeatInterval = durationpb.New(time.Minute)
	if err := s.Send(hello(h)); err != nil {
		t.Fatal(err)
	}
	f, err := s.Recv()
	if err != nil || f.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", f, err)
	}
	return s, cancel, f.GetWelcome()
}

// startReading turns a raw stream into a conn that reads every frame.
func startReading(t *testing.T, s tetherv1.TetherService_ConnectClient, cancel context.CancelFunc) *conn {
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

// info returns the AdminService view of session id.
func (n *node) info(t *testing.T, id string) *tetherv1.SessionInfo {
	t.Helper()
	r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: id})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetSession()
}

// backUp has the server send session id 300 messages of 1,000 bytes, more
// than a non-reading client's connection takes (64 KiB of window and 64 KiB
// of grpc write quota: some 126 messages), and waits until its writer is
// blocked in Send: last_sent_seq stays put, past 100 and short of 300.
func (n *node) backUp(t *testing.T, id string) {
	t.Helper()
	for range 300 {
		if _, err := n.srv.Publish(context.Background(), brokerSession(id), make([]byte, 1000), ""); err != nil {
			t.Fatal(err)
		}
	}
	var last []uint64
	waitFor(t, func() bool {
		time.Sleep(50 * time.Millisecond)
		last = append(last, n.info(t, id).GetLastSentSeq())
		k := len(last)
		return k >= 3 && last[k-1] == last[k-2] && last[k-2] == last[k-3] && last[k-1] > 100 && last[k-1] < 300
	})
}

// handled waits until every frame sent on session id so far was handled:
// frames are handled in order, so it sends a subscribe and waits for it.
func (n *node) handled(t *testing.T, s tetherv1.TetherService_ConnectClient, id string) {
	t.Helper()
	if err := s.Send(subscribe("handled-mark")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return slices.Contains(n.info(t, id).GetTopics(), "handled-mark") })
}

// sendAll sends frames until the server ends the stream.
func sendAll(s tetherv1.TetherService_ConnectClient, n int, f func(i int) *tetherv1.ConnectRequest) {
	for i := range n {
		if s.Send(f(i)) != nil {
			return
		}
	}
}

// TestHostileInputs plays hostile inputs against one server and asserts,
// for each, the exact status code and a message that says what was wrong,
// and that a well-behaved session, connected throughout, receives the
// message published after each case: nothing a hostile client does reaches
// it.
//
// Rows with a bug note record today's behaviour where it departs from
// frames.proto; the note says what the spec asks for.
// The auth cases (missing or garbage bearer tokens, publishing beyond one's
// permissions) live with the auth layer. A stream that never sends hello is
// TestHostileSilentStreams, in fake time.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	const maxSessions = 128
	n := startNode(t,
		server.WithMaxMessageBytes(1024), // frames up to 1024 + 64 KiB
		server.WithMaxTopics(16),
		server.WithResumeWindow(time.Second),
		server.WithMaxSessions(maxSessions))
	witness := n.dial(t, "")
	witness.open(&tetherv1.Hello{ClientId: "witness", Topics: []string{"news"}})

	// open starts a session (anonymous unless clientID is set).
	open := func(t *testing.T, clientID string, topics ...string) (*conn, *tetherv1.Welcome) {
		c := n.dial(t, "")
		return c, c.open(&tetherv1.Hello{ClientId: clientID, Topics: topics})
	}
	// detached starts a session as principal and breaks its stream.
	detached := func(t *testing.T, principal string) *tetherv1.Welcome {
		c := n.dial(t, principal)
		w := c.open(&tetherv1.Hello{})
		c.cancel()
		waitState(t, n, w.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
		return w
	}
	// first sends f as the first frame.
	first := func(t *testing.T, f *tetherv1.ConnectRequest) outcome {
		c := n.dial(t, "")
		c.send(f)
		return ended(c)
	}
	// after sends f after hello.
	after := func(t *testing.T, f ...*tetherv1.ConnectRequest) outcome {
		c, _ := open(t, "")
		for _, f := range f {
			c.send(f)
		}
		return ended(c)
	}
	// afterFrame sends f after hello and expects a non-fatal Error frame.
	afterFrame := func(t *testing.T, f *tetherv1.ConnectRequest) outcome {
		c, _ := open(t, "")
		c.send(f)
		return errorFrame(t, c)
	}
	badHello := func(t *testing.T, h *tetherv1.Hello) outcome {
		return first(t, hello(h))
	}
	resume := func(t *testing.T, principal, id, token string, last uint64) (outcome, *tetherv1.Welcome) {
		c := n.dial(t, principal)
		w := c.open(&tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: id, ResumeToken: token, LastReceivedSeq: last}})
		if !w.GetResumed() && w.GetSessionId() == id {
			t.Fatalf("a refused resume kept session %s", id)
		}
		return welcomed(w), w
	}
	msgTo := func(target string) *tetherv1.ConnectRequest {
		return message(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_ClientId{ClientId: target}, Payload: []byte("x")})
	}
	publish := func(r *tetherv1.PublishRequest) outcome {
		_, err := n.tether().Publish(context.Background(), r)
		return unary(err)
	}
	invalidUTF8 := []byte("a\xffb")
	many := func(k int, f func(i int) string) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}

	var seq uint64 // the witness's last message
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) outcome
		want outcome // how and code exactly; msg is a substring
		bug  string
	}{
		// Order.
		{"ping before hello", func(t *testing.T) outcome { return first(t, ping(1)) },
			outcome{"stream ended", codes.InvalidArgument, "the first frame must be hello, got ping"}, ""},
		{"message before hello", func(t *testing.T) outcome { return first(t, toTopic(1, "t", "x")) },
			outcome{"stream ended", codes.InvalidArgument, "the first frame must be hello, got message"}, ""},
		{"close before hello", func(t *testing.T) outcome {
			return first(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{}}})
		}, outcome{"stream ended", codes.InvalidArgument, "the first frame must be hello, got close"}, ""},
		{"two hellos", func(t *testing.T) outcome { return after(t, hello(&tetherv1.Hello{})) },
			outcome{"stream ended", codes.InvalidArgument, "hello may be sent only once, as the first frame"}, ""},
		{"empty frame first", func(t *testing.T) outcome { return first(t, &tetherv1.ConnectRequest{}) },
			outcome{"stream ended", codes.InvalidArgument, "the first frame must be hello, got an empty frame"}, ""},
		{"empty frame after hello", func(t *testing.T) outcome { return after(t, &tetherv1.ConnectRequest{}) },
			outcome{"stream ended", codes.InvalidArgument, "empty or unknown frame: set exactly one of ping, pong, message, batch, ack, subscribe, unsubscribe, close, set_heartbeat or suspend"}, ""},
		{"only unknown fields, first", func(t *testing.T) outcome {
			f := withRaw(&tetherv1.ConnectRequest{}, protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7), rawBytes(100, []byte("??")))
			if b, _ := proto.Marshal(f); len(b) == 0 {
				t.Fatal("the frame marshals empty")
			}
			return first(t, f)
		}, outcome{"stream ended", codes.InvalidArgument, "the first frame must be hello, got an empty frame"}, ""},
		{"only unknown fields, after hello", func(t *testing.T) outcome {
			return after(t, withRaw(&tetherv1.ConnectRequest{}, rawBytes(100, []byte("??"))))
		}, outcome{"stream ended", codes.InvalidArgument, "empty or unknown frame"}, ""},
		{"a future oneof member (field 40)", func(t *testing.T) outcome {
			return after(t, withRaw(&tetherv1.ConnectRequest{}, rawBytes(40, nil)))
		}, outcome{"stream ended", codes.InvalidArgument, "empty or unknown frame"}, ""},
		{"a batch when hello asked for none", func(t *testing.T) outcome {
			return after(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Batch{Batch: &tetherv1.ClientMessageBatch{
				Messages: []*tetherv1.ClientMessage{{Target: &tetherv1.ClientMessage_Topic{Topic: "t"}}}}}})
		}, outcome{"stream ended", codes.InvalidArgument, "a batch frame, but Welcome.max_batch is 0: ask for batches with Hello.max_batch"}, ""},
		{"unknown fields inside hello are ignored", func(t *testing.T) outcome {
			c := n.dial(t, "")
			return welcomed(c.open(withRaw(&tetherv1.Hello{}, rawBytes(50, []byte("future")))))
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_NOT_REQUESTED resumed=false"}, ""},

		// Size.
		{"payload beyond max_message_bytes", func(t *testing.T) outcome { return afterFrame(t, toTopic(1, "t", strings.Repeat("x", 2000))) },
			outcome{"error frame", codes.InvalidArgument, "payload of 2000 bytes exceeds the limit of 1024 bytes (Welcome.limits.max_message_bytes)"}, ""},
		{"frame beyond grpc MaxRecvMsgSize", func(t *testing.T) outcome { return after(t, toTopic(1, "t", strings.Repeat("x", 200<<10))) },
			outcome{"stream ended", codes.ResourceExhausted, "grpc: received message larger than max"}, ""},
		{"hello beyond max_frame_bytes", func(t *testing.T) outcome {
			return badHello(t, &tetherv1.Hello{Metadata: map[string]string{"k": strings.Repeat("v", 100<<10)}})
		}, outcome{"stream ended", codes.InvalidArgument, "exceeds the limit of 66560 bytes (Welcome.limits.max_frame_bytes)"}, ""},
		{"5,000 headers", func(t *testing.T) outcome {
			h := make(map[string]string)
			for i := range 5000 {
				h[fmt.Sprint("header-", i)] = "value"
			}
			return after(t, message(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_Topic{Topic: "t"}, Headers: h}))
		}, outcome{"stream ended", codes.InvalidArgument, "exceeds the limit of 66560 bytes (Welcome.limits.max_frame_bytes)"}, ""},
		{"ids and headers beyond their bounds, within the frame slack", func(t *testing.T) outcome {
			h := make(map[string]string)
			for i := range 400 {
				h[fmt.Sprint("h", i)] = strings.Repeat("v", 100)
			}
			return afterFrame(t, message(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_Topic{Topic: "big"}, Headers: h,
				IdempotencyKey: strings.Repeat("k", 10000), Payload: []byte("x")}))
		}, outcome{"error frame", codes.InvalidArgument, "idempotency_key is 10000 bytes; the limit is 256"}, ""},
		{"headers beyond 16 KiB", func(t *testing.T) outcome {
			h := make(map[string]string)
			for i := range 400 {
				h[fmt.Sprint("h", i)] = strings.Repeat("v", 100)
			}
			return afterFrame(t, message(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_Topic{Topic: "big"}, Headers: h, Payload: []byte("x")}))
		}, outcome{"error frame", codes.InvalidArgument, "headers total"}, ""},

		// Topics and UTF-8.
		{"invalid UTF-8 topic in hello", func(t *testing.T) outcome {
			return badHello(t, withRaw(&tetherv1.Hello{}, rawBytes(3, invalidUTF8)))
		}, outcome{"stream ended", codes.InvalidArgument, "undecodable frame: field ConnectRequest.hello.topics is not valid UTF-8"}, ""},
		{"invalid UTF-8 topic in subscribe", func(t *testing.T) outcome {
			return after(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: withRaw(&tetherv1.Subscribe{}, rawBytes(1, invalidUTF8))}})
		}, outcome{"stream ended", codes.InvalidArgument, "field ConnectRequest.subscribe.topics is not valid UTF-8"}, ""},
		{"invalid UTF-8 message target", func(t *testing.T) outcome {
			return after(t, message(withRaw(&tetherv1.ClientMessage{}, rawBytes(2, invalidUTF8))))
		}, outcome{"stream ended", codes.InvalidArgument, "field ConnectRequest.message.topic is not valid UTF-8"}, ""},
		{"invalid UTF-8 header value", func(t *testing.T) outcome {
			entry := append(rawBytes(1, []byte("k")), rawBytes(2, invalidUTF8)...)
			return after(t, message(withRaw(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_Topic{Topic: "t"}}, rawBytes(7, entry))))
		}, outcome{"stream ended", codes.InvalidArgument, "field ConnectRequest.message.headers.value is not valid UTF-8"}, ""},
		{"topic with a space in hello", func(t *testing.T) outcome { return badHello(t, &tetherv1.Hello{Topics: []string{"has space"}}) },
			outcome{"stream ended", codes.InvalidArgument, `topic "has space": a topic may not contain spaces or control characters`}, ""},
		{"topic with a space in subscribe", func(t *testing.T) outcome { return afterFrame(t, subscribe("ok", "has space")) },
			outcome{"error frame", codes.InvalidArgument, `topic "has space": a topic may not contain spaces or control characters`}, ""},
		{"topic with a tab in subscribe", func(t *testing.T) outcome { return afterFrame(t, subscribe("tab\there")) },
			outcome{"error frame", codes.InvalidArgument, "a topic may not contain spaces or control characters"}, ""},
		{"topic with a space as a message target", func(t *testing.T) outcome {
			return afterFrame(t, message(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_Topic{Topic: "has space"}}))
		}, outcome{"error frame", codes.InvalidArgument, `topic "has space": a topic may not contain spaces or control characters`}, ""},
		{"257-byte topic in hello", func(t *testing.T) outcome {
			return badHello(t, &tetherv1.Hello{Topics: []string{strings.Repeat("t", 257)}})
		}, outcome{"stream ended", codes.InvalidArgument, "a topic is 1 to 256 bytes of UTF-8"}, ""},
		{"257-byte topic in subscribe", func(t *testing.T) outcome { return afterFrame(t, subscribe(strings.Repeat("t", 257))) },
			outcome{"error frame", codes.InvalidArgument, "a topic is 1 to 256 bytes of UTF-8"}, ""},
		{"empty topic in subscribe", func(t *testing.T) outcome { return afterFrame(t, subscribe("")) },
			outcome{"error frame", codes.InvalidArgument, `topic "": a topic is 1 to 256 bytes of UTF-8`}, ""},

		// Sequence numbers and acks.
		{"seq regression: a re-sent message", func(t *testing.T) outcome {
			c, _ := open(t, "", "dup")
			c.send(toTopic(1, "dup", "one"))
			c.send(toTopic(2, "dup", "two"))
			for _, want := range []string{"one", "two"} {
				if m := c.message(); string(m.GetPayload()) != want {
					t.Fatalf("got %q, want %q", m.GetPayload(), want)
				}
			}
			c.ackedTo(2)
			c.send(toTopic(1, "dup", "one again"))
			a := c.ackFrame() // fails on a redelivered message
			c.noFrame()
			return outcome{"ack", codes.OK, fmt.Sprintf("ack %d again; the duplicate was dropped", a.GetSeq())}
		}, outcome{"ack", codes.OK, "ack 2 again; the duplicate was dropped"}, ""},
		{"seq gap", func(t *testing.T) outcome { return after(t, toTopic(3, "t", "x")) },
			outcome{"stream ended", codes.InvalidArgument, "message seq 3 skips ahead: expected 1 (or 0 to let the server number it)"}, ""},
		{"seq 2^64-1", func(t *testing.T) outcome { return after(t, toTopic(math.MaxUint64, "t", "x")) },
			outcome{"stream ended", codes.InvalidArgument, "message seq 18446744073709551615 skips ahead: expected 1"}, ""},
		{"ack of an unsent seq", func(t *testing.T) outcome { return after(t, ack(5)) },
			outcome{"stream ended", codes.InvalidArgument, "ack 5 is beyond the highest seq sent (0): ack only what you received"}, ""},
		{"ack 2^64-1 after one message", func(t *testing.T) outcome {
			c, _ := open(t, "h-ack")
			n.publishTo(t, "h-ack", "m")
			c.message()
			c.send(ack(math.MaxUint64))
			return ended(c)
		}, outcome{"stream ended", codes.InvalidArgument, "ack 18446744073709551615 is beyond the highest seq sent (1)"}, ""},

		// Floods.
		{"ping flood within the frame burst (3,000 pings)", func(t *testing.T) outcome {
			c, _ := open(t, "h-pings")
			for i := range 3000 {
				c.send(ping(uint64(i + 1)))
			}
			pongs := 0
			for {
				f := c.next()
				if p := f.GetPong(); p != nil {
					pongs++
					if p.GetId() == 3000 {
						break
					}
				}
			}
			if pongs > 3000 {
				t.Fatalf("%d pongs", pongs)
			}
			n.publishTo(t, "h-pings", "still here")
			c.message()
			return outcome{"survived", codes.OK, fmt.Sprintf("%d pongs for 3000 pings, the last for ping 3000", pongs)}
		}, outcome{"survived", codes.OK, "pongs for 3000 pings, the last for ping 3000"}, ""},
		{"ping flood on a backed-up stream: pongs coalesce", func(t *testing.T) outcome {
			s, cancel, w := n.dialFixed(t, &tetherv1.Hello{ClientId: "h-stuck"})
			n.backUp(t, w.GetSessionId())
			// Without coalescing, 3,000 pongs would queue behind the blocked
			// writer and cut the stream ("control frames").
			sendAll(s, 3000, func(i int) *tetherv1.ConnectRequest {
				return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: uint64(i + 1), SentAt: timestamppb.Now()}}}
			})
			n.handled(t, s, w.GetSessionId())
			c := startReading(t, s, cancel)
			pongs, msgs := 0, 0
			for last := false; !last || msgs < 300; {
				f := c.next()
				switch {
				case f.GetPong() != nil:
					pongs++
					last = f.GetPong().GetId() == 3000
				case f.GetMessage() != nil:
					msgs++
					c.send(ack(f.GetMessage().GetSeq())) // opens the receive window
				case f.GetAck() == nil:
					t.Fatalf("unexpected %v", f)
				}
			}
			if pongs > 10 {
				t.Fatalf("%d pongs for 3000 pings on a blocked stream: they did not coalesce", pongs)
			}
			n.publishTo(t, "h-stuck", "still here")
			if m := c.message(); string(m.GetPayload()) != "still here" {
				t.Fatalf("got %v", m)
			}
			return outcome{"survived", codes.OK, fmt.Sprintf("%d pong(s) for 3000 pings; all 300 messages then arrived", pongs)}
		}, outcome{"survived", codes.OK, "for 3000 pings; all 300 messages then arrived"}, ""},
		{"ping flood (10,000 pings): read, not cut", func(t *testing.T) outcome {
			c, _ := open(t, "")
			sendAll(c.stream, 10000, func(i int) *tetherv1.ConnectRequest { return ping(uint64(i + 1)) })
			alive(t, c, 10001)
			return outcome{"survived", codes.OK, "10000 pings read; the stream still answers"}
		}, outcome{"survived", codes.OK, "10000 pings read; the stream still answers"}, ""},
		{"ping flood from a client that never reads", func(t *testing.T) outcome {
			s, cancel, _ := n.dialFixed(t, &tetherv1.Hello{})
			sendAll(s, 10000, func(i int) *tetherv1.ConnectRequest { return ping(uint64(i + 1)) })
			alive(t, startReading(t, s, cancel), 10001)
			return outcome{"survived", codes.OK, "pongs coalesced; the stream answers once read"}
		}, outcome{"survived", codes.OK, "pongs coalesced; the stream answers once read"}, ""},
		{"a client that never reads while each frame draws an Error", func(t *testing.T) outcome {
			s, cancel, w := n.dialFixed(t, &tetherv1.Hello{})
			n.backUp(t, w.GetSessionId())
			// 2,000 Error frames of ~117 bytes: more than the transport takes
			// even without the backlog, so 256 wait whatever the timing.
			sendAll(s, 2000, func(int) *tetherv1.ConnectRequest { return msgTo("ghost") })
			return ended(startReading(t, s, cancel))
		}, outcome{"stream ended", codes.ResourceExhausted, "more than 256 control frames (pongs, acks, errors) wait to be written: the client is not reading its stream"}, ""},
		{"subscribe flood beyond max topics (40 frames, limit 16)", func(t *testing.T) outcome {
			c, _ := open(t, "")
			for i := range 40 {
				c.send(subscribe(fmt.Sprint("flood-", i)))
			}
			var first outcome
			for i := range 24 {
				o := nextError(t, c)
				if i == 0 {
					first = o
				}
			}
			alive(t, c, 1)
			return first
		}, outcome{"error frame", codes.InvalidArgument, "subscribing to more topics would exceed the limit of 16 per session (Welcome.limits.max_topics)"}, ""},
		{"one subscribe with 10,000 topics", func(t *testing.T) outcome {
			return afterFrame(t, subscribe(many(10000, func(i int) string { return fmt.Sprintf("%x", i) })...))
		}, outcome{"error frame", codes.InvalidArgument, "subscribing to more topics would exceed the limit of 16"}, ""},
		{"10,000 topics in hello", func(t *testing.T) outcome {
			return badHello(t, &tetherv1.Hello{Topics: many(10000, func(int) string { return "t" })})
		}, outcome{"stream ended", codes.InvalidArgument, "hello.topics has 10000 topics; the limit is 16"}, ""},

		// Resume.
		{"bogus resume token", func(t *testing.T) outcome {
			o, _ := resume(t, "", detached(t, "").GetSessionId(), "bogus", 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_UNKNOWN_SESSION resumed=false"}, ""},
		{"unknown session id", func(t *testing.T) outcome {
			o, _ := resume(t, "", "no-such-session", "x", 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_UNKNOWN_SESSION resumed=false"}, ""},
		{"token already rotated out", func(t *testing.T) outcome {
			// A token stops working once the client presented the one
			// issued after it (until then, its Welcome may have been lost).
			w := detached(t, "")
			orig := w.GetResumeToken()
			for range 2 {
				c := n.dial(t, "")
				w2 := c.open(resumeHello(w, 0))
				if !w2.GetResumed() {
					t.Fatalf("resume: %v", w2)
				}
				c.cancel()
				waitState(t, n, w.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
				w.ResumeToken = w2.GetResumeToken()
			}
			o, _ := resume(t, "", w.GetSessionId(), orig, 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_UNKNOWN_SESSION resumed=false"}, ""},
		{"resume token without a session id", func(t *testing.T) outcome {
			o, _ := resume(t, "", "", detached(t, "").GetResumeToken(), 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_NOT_REQUESTED resumed=false"}, ""},
		{"expired session", func(t *testing.T) outcome {
			w := detached(t, "")
			waitFor(t, func() bool { return n.state(t, w.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_CLOSED })
			o, _ := resume(t, "", w.GetSessionId(), w.GetResumeToken(), 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_EXPIRED resumed=false"}, ""},
		{"closed session", func(t *testing.T) outcome {
			c, w := open(t, "")
			c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "bye"}}})
			c.expectEnd(codes.OK, "")
			o, _ := resume(t, "", w.GetSessionId(), w.GetResumeToken(), 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_CLOSED resumed=false"}, ""},
		{"another principal's token", func(t *testing.T) outcome {
			w := detached(t, "alice")
			o, _ := resume(t, "mallory", w.GetSessionId(), w.GetResumeToken(), 0)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_PRINCIPAL_MISMATCH resumed=false"}, ""},
		{"last_received_seq beyond what was sent", func(t *testing.T) outcome {
			w := detached(t, "")
			o, _ := resume(t, "", w.GetSessionId(), w.GetResumeToken(), 1)
			return o
		}, outcome{"welcome", codes.OK, "RESUME_STATUS_SEQ_MISMATCH resumed=false"}, ""},
		{"client id of another principal's live session", func(t *testing.T) outcome {
			victim := n.dial(t, "alice")
			victim.open(&tetherv1.Hello{ClientId: "h-phone"})
			thief := n.dial(t, "mallory")
			thief.send(hello(&tetherv1.Hello{ClientId: "h-phone"}))
			o := ended(thief)
			alive(t, victim, 4243) // alice keeps her session and her messages
			return o
		}, outcome{"stream ended", codes.PermissionDenied, "belongs to a session of another principal"}, ""},

		// Hello fields.
		{"metadata with 65 entries", func(t *testing.T) outcome {
			md := make(map[string]string)
			for i := range 65 {
				md[fmt.Sprint("k", i)] = "v"
			}
			return badHello(t, &tetherv1.Hello{Metadata: md})
		}, outcome{"stream ended", codes.InvalidArgument, "hello.metadata has 65 entries; the limit is 64"}, ""},
		{"client id of 257 bytes", func(t *testing.T) outcome { return badHello(t, &tetherv1.Hello{ClientId: strings.Repeat("c", 257)}) },
			outcome{"stream ended", codes.InvalidArgument, "hello.client_id is longer than 256 bytes"}, ""},
		{"negative heartbeat interval", func(t *testing.T) outcome {
			return badHello(t, &tetherv1.Hello{HeartbeatInterval: durationpb.New(-time.Second)})
		}, outcome{"stream ended", codes.InvalidArgument, "hello.heartbeat_interval must be a valid, non-negative duration"}, ""},
		{"invalid heartbeat interval (nanos out of range)", func(t *testing.T) outcome {
			return badHello(t, &tetherv1.Hello{HeartbeatInterval: &durationpb.Duration{Seconds: 1, Nanos: 2_000_000_000}})
		}, outcome{"stream ended", codes.InvalidArgument, "hello.heartbeat_interval must be a valid, non-negative duration"}, ""},
		{"invalid heartbeat interval (signs differ)", func(t *testing.T) outcome {
			return badHello(t, &tetherv1.Hello{HeartbeatInterval: &durationpb.Duration{Seconds: 5, Nanos: -1}})
		}, outcome{"stream ended", codes.InvalidArgument, "hello.heartbeat_interval must be a valid, non-negative duration"}, ""},
		{"heartbeat interval of 10,000 years", func(t *testing.T) outcome {
			c := n.dial(t, "")
			w := c.open(&tetherv1.Hello{HeartbeatInterval: &durationpb.Duration{Seconds: 315576000000}})
			return outcome{"welcome", codes.OK, "heartbeat_interval " + w.GetHeartbeatInterval().AsDuration().String()}
		}, outcome{"welcome", codes.OK, "heartbeat_interval 5m0s"}, ""},

		// Messages and Publish.
		{"reply with no correlation id", func(t *testing.T) outcome {
			return afterFrame(t, message(&tetherv1.ClientMessage{Payload: []byte("x")}))
		}, outcome{"error frame", codes.InvalidArgument, "message has no target and no correlation id"}, ""},
		{"reply to a request never received", func(t *testing.T) outcome {
			return afterFrame(t, message(&tetherv1.ClientMessage{CorrelationId: "forged"}))
		}, outcome{"error frame", codes.NotFound, `reply "forged": tether/server: no request with this correlation id was delivered to the session`}, ""},
		{"message to an unknown client id", func(t *testing.T) outcome { return afterFrame(t, msgTo("ghost")) },
			outcome{"error frame", codes.NotFound, `no session for client "ghost": it is unknown or has ended`}, ""},
		{"message to an unknown session id", func(t *testing.T) outcome {
			return afterFrame(t, message(&tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_SessionId{SessionId: "no-such-session"}}))
		}, outcome{"error frame", codes.NotFound, `no session for session "no-such-session"`}, ""},
		{"message to a 257-byte client id", func(t *testing.T) outcome { return afterFrame(t, msgTo(strings.Repeat("c", 257))) },
			outcome{"error frame", codes.InvalidArgument, "client id must be 1 to 256 bytes"}, ""},
		{"close, then more frames", func(t *testing.T) outcome {
			return after(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "bye"}}},
				ping(1), toTopic(1, "t", "x"), hello(&tetherv1.Hello{}), &tetherv1.ConnectRequest{})
		}, outcome{"stream ended", codes.OK, ""}, ""},
		{"Publish with no target", func(t *testing.T) outcome { return publish(&tetherv1.PublishRequest{Payload: []byte("x")}) },
			outcome{"Publish", codes.InvalidArgument, "no target: set exactly one of topic, session_id or client_id"}, ""},
		{"Publish to a topic with a space", func(t *testing.T) outcome {
			return publish(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "has space"}})
		}, outcome{"Publish", codes.InvalidArgument, "a topic may not contain spaces or control characters"}, ""},
		{"Publish to an empty session id", func(t *testing.T) outcome {
			return publish(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_SessionId{}})
		}, outcome{"Publish", codes.InvalidArgument, "session id must be 1 to 256 bytes"}, ""},
		{"Publish beyond max_message_bytes", func(t *testing.T) outcome {
			return publish(&tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "news"}, Payload: make([]byte, 2000)})
		}, outcome{"Publish", codes.InvalidArgument, "payload of 2000 bytes exceeds the limit of 1024 bytes"}, ""},
		{"Publish to an invalid UTF-8 topic", func(t *testing.T) outcome {
			return publish(withRaw(&tetherv1.PublishRequest{}, rawBytes(1, invalidUTF8)))
		}, outcome{"Publish", codes.InvalidArgument, "undecodable request: field PublishRequest.topic is not valid UTF-8"}, ""},

		// Limits.
		{"connects beyond WithMaxSessions", func(t *testing.T) outcome {
			// Only the witness is left once the others' resume windows end.
			waitFor(t, func() bool {
				l, err := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{})
				return err == nil && len(l.GetSessions()) == 1
			})
			var full []*conn
			for range maxSessions - 1 {
				c, _ := open(t, "")
				full = append(full, c)
			}
			c := n.dial(t, "")
			c.send(hello(&tetherv1.Hello{}))
			o := ended(c)
			for _, c := range full { // end them for good: the next cases need room
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{}}})
				c.expectEnd(codes.OK, "")
			}
			return o
		}, outcome{"stream ended", codes.Unavailable, "the server is at its limit of 128 sessions: reconnect to another backend"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.run(t)
			if got.how != tc.want.how || got.code != tc.want.code || !strings.Contains(got.msg, tc.want.msg) {
				t.Fatalf("got %v; want %s: %v containing %q", got, tc.want.how, tc.want.code, tc.want.msg)
			}
			if tc.bug != "" {
				t.Logf("%v (known bug: %s)", got, tc.bug)
			} else {
				t.Logf("%v", got)
			}
		})
		// The well-behaved session lost nothing: one message per case, in
		// order, and no other frame.
		seq++
		payload := "after: " + tc.name
		n.publishTo(t, "witness", payload)
		if m := witness.message(); string(m.GetPayload()) != payload || m.GetSeq() != seq {
			t.Fatalf("after %q the witness got seq %d %q; want seq %d %q", tc.name, m.GetSeq(), m.GetPayload(), seq, payload)
		}
		witness.send(ack(seq))
	}
}

// TestHostileSilentStreams opens streams that never send hello (slowloris)
// next to a well-behaved session, in fake time: each ends with
// DEADLINE_EXCEEDED exactly at the 10s hello timeout (the server has no
// option for it), a hello sent just before the timeout is welcomed, and the
// well-behaved session is untouched.
func TestHostileSilentStreams(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		w, _ := b.connect(t, &tetherv1.Hello{ClientId: "witness", HeartbeatInterval: durationpbNew(time.Minute)})
		start := time.Now()
		type result struct {
			err error
			at  time.Time
		}
		const silent = 20
		results := make(chan result, silent)
		for range silent {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := tetherv1.NewTetherServiceClient(b.cc).Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				_, err := s.Recv()
				results <- result{err, time.Now()}
			}()
		}
		// One more stream sends its hello just in time.
		late := make(chan *tetherv1.ConnectResponse, 1)
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := tetherv1.NewTetherServiceClient(b.cc).Connect(ctx)
			if err != nil {
				t.Error(err)
				close(late)
				return
			}
			time.Sleep(10*time.Second - time.Millisecond)
			_ = s.Send(hello(&tetherv1.Hello{}))
			f, _ := s.Recv()
			late <- f
		}()
		for range silent {
			r := <-results
			st := status.Convert(r.err)
			if st.Code() != codes.DeadlineExceeded || !contains(st.Message(), "no hello within 10s: the first frame must be hello") {
				t.Fatalf("a silent stream ended with %v", st)
			}
			if d := r.at.Sub(start); d != 10*time.Second {
				t.Fatalf("a silent stream ended after %v, want 10s", d)
			}
		}
		if f := <-late; f.GetWelcome() == nil {
			t.Fatalf("a hello 1ms before the timeout got %v", f)
		}
		if _, err := b.srv.Publish(context.Background(), brokerClient("witness"), []byte("still here"), ""); err != nil {
			t.Fatal(err)
		}
		for f := range w.frames {
			if m := f.f.GetMessage(); m != nil {
				if string(m.GetPayload()) != "still here" {
					t.Fatalf("the witness got %q", m.GetPayload())
				}
				return
			}
			if f.f.GetPing() == nil {
				t.Fatalf("the witness got %v", f.f)
			}
		}
		t.Fatalf("the witness's stream ended: %v", w.endErr)
	})
}

package server_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

func batchOf(msgs ...*tetherv1.ClientMessage) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Batch{Batch: &tetherv1.ClientMessageBatch{Messages: msgs}}}
}

func topicMessage(seq uint64, topic, payload string) *tetherv1.ClientMessage {
	return &tetherv1.ClientMessage{Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: topic}, Payload: []byte(payload)}
}

// received is one server message and how it came: alone or in a batch of
// n.
type received struct {
	m     *tetherv1.ServerMessage
	batch int // the size of the batch frame it came in; 0 for a Message frame
}

// messages waits for the next n server messages, whatever frames carry
// them, skipping acks.
func (c *conn) messages(n int) []received {
	c.t.Helper()
	var out []received
	for len(out) < n {
		f := c.next()
		switch {
		case f.GetMessage() != nil:
			out = append(out, received{m: f.GetMessage()})
		case f.GetBatch() != nil:
			for _, m := range f.GetBatch().GetMessages() {
				out = append(out, received{m: m, batch: len(f.GetBatch().GetMessages())})
			}
		case f.GetAck() == nil:
			c.t.Fatalf("got %v, want messages", f)
		}
	}
	if len(out) != n {
		c.t.Fatalf("got %d messages, want %d", len(out), n)
	}
	return out
}

func TestBatchGrant(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	for _, tc := range []struct{ ask, want uint32 }{{0, 0}, {1, 1}, {16, 16}, {server.MaxBatch, server.MaxBatch}, {100000, server.MaxBatch}} {
		t.Run(fmt.Sprint(tc.ask), func(t *testing.T) {
			t.Parallel()
			w := n.dial(t, "").open(&tetherv1.Hello{MaxBatch: tc.ask})
			if w.GetMaxBatch() != tc.want {
				t.Fatalf("Hello.max_batch %d: Welcome.max_batch = %d, want %d", tc.ask, w.GetMaxBatch(), tc.want)
			}
		})
	}
}

// batchedDelivery queues 8 topic messages for a receiver whose window
// takes 4, from a sender's ClientMessageBatch, lets the receiver take the
// first 4 and ack them, and returns the 4 that follow: all queued when the
// ack opens the window, so they go in one batch when the receiver asked
// for batches.
func batchedDelivery(t *testing.T, n *node, maxBatch uint32) []received {
	r := n.dial(t, "")
	r.open(&tetherv1.Hello{Topics: []string{"t"}, MaxBatch: maxBatch, ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 4}})
	s := n.dial(t, "")
	if w := s.open(&tetherv1.Hello{MaxBatch: 8}); w.GetMaxBatch() != 8 {
		t.Fatalf("sender granted max_batch %d, want 8", w.GetMaxBatch())
	}
	var msgs []*tetherv1.ClientMessage
	for i := range 8 {
		msgs = append(msgs, topicMessage(uint64(i+1), "t", fmt.Sprint("m", i+1)))
	}
	s.send(batchOf(msgs...))
	for acked := uint64(0); acked < 8; {
		// Acks may cover the batch in parts: the first message goes on
		// its own while nothing else waits to be acked.
		acked = s.ackFrame().GetSeq()
	}
	first := r.messages(4)
	r.send(ack(4))
	rest := r.messages(4)
	for i, got := range append(first, rest...) {
		if got.m.GetSeq() != uint64(i+1) || string(got.m.GetPayload()) != fmt.Sprint("m", i+1) || got.m.GetTopic() != "t" {
			t.Fatalf("message %d: seq %d payload %q topic %q; want seq %d payload m%d topic t", i, got.m.GetSeq(), got.m.GetPayload(), got.m.GetTopic(), i+1, i+1)
		}
	}
	return rest
}

func TestBatchesGoToAClientThatAsked(t *testing.T) {
	t.Parallel()
	for _, got := range batchedDelivery(t, startNode(t), 16) {
		if got.batch != 4 {
			t.Fatalf("seq %d came in a batch of %d, want the 4 queued messages in one batch", got.m.GetSeq(), got.batch)
		}
	}
}

// TestNoBatchesForAClientThatDidNotAsk is grpcurl's and an old stub's
// view: every message in a Message frame of its own.
func TestNoBatchesForAClientThatDidNotAsk(t *testing.T) {
	t.Parallel()
	for _, got := range batchedDelivery(t, startNode(t), 0) {
		if got.batch != 0 {
			t.Fatalf("seq %d came in a batch of %d to a client that asked for none", got.m.GetSeq(), got.batch)
		}
	}
}

// TestBatchMessageFailsAlone: a failed message in a batch gets its Error
// frame, before the ack that covers it, and the rest of the batch is
// handled.
func TestBatchMessageFailsAlone(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	r := n.dial(t, "")
	r.open(&tetherv1.Hello{Topics: []string{"t"}, MaxBatch: 8})
	s := n.dial(t, "")
	s.open(&tetherv1.Hello{MaxBatch: 8})
	s.send(batchOf(topicMessage(1, "t", "a"), topicMessage(2, "bad topic!", "b"), topicMessage(3, "t", "c")))
	var failed *tetherv1.Error
	for acked := uint64(0); acked < 3; {
		f := s.next()
		switch {
		case f.GetError() != nil:
			failed = f.GetError()
		case f.GetAck() != nil:
			acked = f.GetAck().GetSeq()
			if acked >= 2 && failed == nil {
				t.Fatalf("ack %d came before the Error frame of seq 2", acked)
			}
		default:
			t.Fatalf("got %v, want an Error frame and acks", f)
		}
	}
	if codes.Code(failed.GetCode()) != codes.InvalidArgument || failed.GetSeq() != 2 {
		t.Fatalf("the invalid message got %v, want an INVALID_ARGUMENT error frame for seq 2", failed)
	}
	got := r.messages(2)
	if string(got[0].m.GetPayload()) != "a" || string(got[1].m.GetPayload()) != "c" {
		t.Fatalf("delivered %q, %q; want a, c", got[0].m.GetPayload(), got[1].m.GetPayload())
	}
}

func TestBadBatches(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	for _, tc := range []struct {
		name  string
		batch *tetherv1.ConnectRequest
		want  string
	}{
		{"empty", batchOf(), "an empty batch frame: a batch holds at least one message"},
		{"above the grant", batchOf(topicMessage(1, "t", "a"), topicMessage(2, "t", "b"), topicMessage(3, "t", "c")),
			"a batch of 3 messages exceeds Welcome.max_batch (2): split it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := n.dial(t, "")
			c.open(&tetherv1.Hello{MaxBatch: 2})
			c.send(tc.batch)
			c.expectEnd(codes.InvalidArgument, tc.want)
		})
	}
}

// A server registered on a grpc.Server made without
// Server.GRPCServerOptions (so without its codec, which sends the frames
// encoded by hand) sends proto frames, batches included.
func TestBatchesWithoutTheServersCodec(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.WithServerID("plain"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	srv.Register(gs)
	n := &node{srv: srv, cc: tethertest.ServeGRPC(t, gs)}
	for _, got := range batchedDelivery(t, n, 16) {
		if got.batch != 4 {
			t.Fatalf("seq %d came in a batch of %d, want the 4 queued messages in one batch", got.m.GetSeq(), got.batch)
		}
	}
}

// The grant stays within the frame burst, and a batch above it is refused
// as above the grant, not paced forever.
func TestBatchesWithinTheFrameBurst(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithFrameRate(1000, 4))
	c := n.dial(t, "")
	if w := c.open(&tetherv1.Hello{MaxBatch: 100}); w.GetMaxBatch() != 4 {
		t.Fatalf("Welcome.max_batch = %d under a frame burst of 4, want 4", w.GetMaxBatch())
	}
	var msgs []*tetherv1.ClientMessage
	for i := range 10 {
		msgs = append(msgs, topicMessage(uint64(i+1), "t", "x"))
	}
	c.send(batchOf(msgs...))
	c.expectEnd(codes.InvalidArgument, "a batch of 10 messages exceeds Welcome.max_batch (4): split it")
}

package server

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file is batching (frames.proto "Batches"): several business
// messages in one frame, each way, for a client that asked in Hello.
//
// A batch is an optimisation of a sender with messages waiting: the writer
// puts in one frame what is queued and the window lets go, up to the
// granted count and batchBytes, and never waits to fill one. One frame is
// one gRPC message, one encode and one flush instead of one per message.

// MaxBatch is the most messages the server puts in one batch frame, and
// takes in one; a Hello asking for more is clamped to it.
const MaxBatch = 128

// batchBytes is the encoded size (as sizeBound bounds it) after which the
// writer closes a batch: a batch of many small messages amortises the
// per-frame cost, and beyond a few HTTP/2 frames a larger one gains
// nothing but latency for its first message. A single larger message goes
// alone. Below frames.Overhead, so that a batch is always within
// Limits.max_frame_bytes.
const batchBytes = 32 << 10

// sizeBound bounds the size of m's ServerMessage in a batch: its bytes and
// strings, with room for every field's tag and length.
func sizeBound(m *broker.Message) int {
	n := 128 + len(m.Payload) + len(m.Target.Name) + len(m.ContentType) + len(m.CorrelationID) + len(m.SourceSession) + len(m.SourceClient)
	for k, v := range m.Headers {
		n += 32 + len(k) + len(v)
	}
	return n
}

// grantBatch returns the batch size granted to Hello: its max_batch,
// clamped to MaxBatch and to the frame burst (a batch's messages count as
// frames: a batch larger than the burst could never be paced); 0 (no
// batches) when it asked for none.
func (srv *Server) grantBatch(h *tetherv1.Hello) int {
	return min(int(min(h.GetMaxBatch(), MaxBatch)), srv.cfg.frameBurst)
}

// setBatch sets the stream's granted batch size, before its writer starts.
func (st *stream) setBatch(n int) {
	st.mu.Lock()
	st.maxBatch = n
	st.mu.Unlock()
}

// popMessagesLocked moves the messages the window lets go now, at most the
// granted batch (one without batches) and batchBytes (at least one
// message), from the queue into flight, and returns them in st.out, which
// the writer owns.
func (st *stream) popMessagesLocked() []broker.Entry {
	limit := max(st.maxBatch, 1)
	out, bytes := st.out[:0], 0
	for len(out) < limit {
		e, ok := st.data.front()
		if !ok || !st.openLocked(len(e.Message.Payload)) {
			break
		}
		if limit > 1 {
			n := sizeBound(e.Message)
			if len(out) > 0 && bytes+n > batchBytes {
				break
			}
			bytes += n
		}
		st.data.pop()
		size := len(e.Message.Payload)
		st.flight.push(sized{e.Seq, size})
		st.flightBytes += size
		out = append(out, e)
	}
	st.out = out
	return out
}

// messageFrame fills the writer's reusable frame with msgs: a Message
// frame for one, a batch for more.
func (st *stream) messageFrame(msgs []broker.Entry) *tetherv1.ConnectResponse {
	if len(msgs) == 1 {
		if st.msg == nil {
			st.msg = newMessageFrame() // only streams that carry messages need one
		}
		fillMessage(st.msg.GetMessage(), msgs[0])
		return st.msg
	}
	if st.batch == nil {
		st.batch = &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Batch{Batch: &tetherv1.ServerMessageBatch{}}}
	}
	b := st.batch.GetBatch()
	for len(st.batchMsgs) < len(msgs) {
		st.batchMsgs = append(st.batchMsgs, &tetherv1.ServerMessage{})
	}
	b.Messages = st.batchMsgs[:len(msgs)]
	for i, e := range msgs {
		fillMessage(b.Messages[i], e)
	}
	return st.batch
}

// handleBatch handles a ClientMessageBatch's messages in order, as if each
// came in a Message frame of its own.
func (st *stream) handleBatch(b *tetherv1.ClientMessageBatch) error {
	if err := st.validBatch(len(b.GetMessages())); err != nil {
		return err
	}
	for _, m := range b.GetMessages() {
		if err := st.handleMessage(m); err != nil {
			return err
		}
	}
	return nil
}

// validBatch checks a ClientMessageBatch of n messages against the batch
// size Welcome granted.
func (st *stream) validBatch(n int) error {
	st.mu.Lock()
	granted := st.maxBatch
	st.mu.Unlock()
	switch {
	case granted == 0:
		return status.Error(codes.InvalidArgument, "a batch frame, but Welcome.max_batch is 0: ask for batches with Hello.max_batch, or send each message in a message frame")
	case n == 0:
		return status.Error(codes.InvalidArgument, "an empty batch frame: a batch holds at least one message")
	case n > granted:
		return status.Errorf(codes.InvalidArgument, "a batch of %d messages exceeds Welcome.max_batch (%d): split it", n, granted)
	}
	return nil
}

// frameCount is how many frames req counts for against the stream's frame
// rate: each message of a batch counts as one.
func frameCount(req *tetherv1.ConnectRequest) int {
	if b := req.GetBatch(); b != nil {
		return max(len(b.GetMessages()), 1)
	}
	return 1
}

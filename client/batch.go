package client

import (
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// batchBytes is the payload bytes after which the writer closes a batch
// (as the server's writer does): many small messages in one frame amortise
// its cost, and a larger batch gains nothing but latency for its first
// message.
const batchBytes = 32 << 10

// batchFrame is a stream writer's reusable ClientMessageBatch frame
// (frames.proto "Batches"). Only the writer touches it, and it sends the
// frame before it fills it again.
type batchFrame struct {
	frame tetherv1.ConnectRequest
	in    tetherv1.ConnectRequest_Batch
	batch tetherv1.ClientMessageBatch
}

// fill puts the first of waiting in the frame and as many after it as fit:
// at most maxBatch messages, batchBytes of payload, and, when maxFrame is
// not 0, an encoded frame of at most maxFrame bytes
// (Welcome.limits.max_frame_bytes). It returns the frame and how many
// messages it took; at least one, which goes alone when the next does not
// fit with it.
func (b *batchFrame) fill(waiting []*pending, maxBatch, maxFrame int) (*tetherv1.ConnectRequest, int) {
	if b.frame.Frame == nil {
		b.in.Batch = &b.batch
		b.frame.Frame = &b.in
	}
	msgs, payload, size := b.batch.Messages[:0], 0, frameOverhead
	for _, p := range waiting[:min(len(waiting), maxBatch)] {
		n := p.bound // its tag and length in the batch included
		if len(msgs) > 0 && (payload+len(p.msg.Payload) > batchBytes || maxFrame > 0 && size+n > maxFrame) {
			break
		}
		msgs = append(msgs, &p.msg)
		payload += len(p.msg.Payload)
		size += n
	}
	b.batch.Messages = msgs
	if len(msgs) == 1 {
		// Alone: its own Message frame, as without batches.
		p := waiting[0]
		if p.frame.Frame == nil {
			p.in.Message = &p.msg
			p.frame.Frame = &p.in
		}
		return &p.frame, 1
	}
	return &b.frame, len(msgs)
}

// frameOverhead bounds what a ConnectRequest adds around its batch: the
// batch field's tag and length.
const frameOverhead = 1 + 5

package server

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file encodes message frames by hand, once per message: a topic
// message's ServerMessage is the same for every subscriber but for its
// seq, so it is marshalled once (broker.Message.Encoded, set by
// receiver.Deliver before the fan-out) and every subscriber's writer
// writes its seq field, then those bytes. Protobuf decoders take fields in
// any order, so the frame is the ConnectResponse any stub decodes.
//
// It needs frameCodec, which sends a preparedFrame's bytes as they are; a
// stream read through another codec (a grpc.Server made without
// Server.GRPCServerOptions) is sent proto frames (stream.messageFrame).

// Field numbers of the frames written here (see tether_service.proto and
// frames.proto).
const (
	fieldResponseMessage protowire.Number = 4 // ConnectResponse.message
	fieldResponseBatch   protowire.Number = 9 // ConnectResponse.batch
	fieldBatchMessages   protowire.Number = 1 // ServerMessageBatch.messages
	fieldMessageSeq      protowire.Number = 1 // ServerMessage.seq
)

// preparedFrame is an encoded ConnectResponse that frameCodec.Marshal
// passes to gRPC as it is; gRPC frees data once it is written. A writer
// reuses one: gRPC marshals within SendMsg.
type preparedFrame struct{ data mem.Buffer }

// encodeBody returns m's ServerMessage encoding without its seq.
func encodeBody(m *broker.Message) []byte {
	var pm tetherv1.ServerMessage
	fillMessage(&pm, broker.Entry{Message: m})
	b, err := proto.Marshal(&pm)
	if err != nil {
		// Only invalid UTF-8 in a string field fails, and every string
		// was checked when the message came in; the proto path reports it.
		return nil
	}
	return b
}

// encoder is a stream writer's state for encodeMessages; only the writer
// uses it.
type encoder struct {
	scratch  tetherv1.ServerMessage // for a message without Encoded
	bodies   [][]byte               // each message's body, for the frame being encoded
	arena    []byte                 // the bodies encoded here, reused
	prepared preparedFrame          // the frame encoded, as SendMsg takes it
}

// encodeMessages returns msgs encoded as one ConnectResponse, in a buffer
// from gRPC's pool: a Message frame for one, a batch for more. It reports
// false when a message cannot be encoded here (the proto path then sends
// it and reports why).
func (enc *encoder) encodeMessages(msgs []broker.Entry) (mem.Buffer, bool) {
	enc.bodies, enc.arena = enc.bodies[:0], enc.arena[:0]
	for _, e := range msgs {
		body := e.Message.Encoded
		if body == nil {
			fillMessage(&enc.scratch, broker.Entry{Message: e.Message})
			start := len(enc.arena)
			var err error
			if enc.arena, err = (proto.MarshalOptions{}).MarshalAppend(enc.arena, &enc.scratch); err != nil {
				return nil, false
			}
			// Still valid when a later append grows the arena: that copies
			// it to a new array and leaves this one as it is.
			body = enc.arena[start:len(enc.arena):len(enc.arena)]
		}
		enc.bodies = append(enc.bodies, body)
	}
	inner := 0
	for i, e := range msgs {
		n := entrySize(e.Seq, enc.bodies[i])
		if len(msgs) > 1 {
			n = protowire.SizeTag(fieldBatchMessages) + protowire.SizeBytes(n)
		}
		inner += n
	}
	field := fieldResponseMessage
	if len(msgs) > 1 {
		field = fieldResponseBatch
	}
	size := protowire.SizeTag(field) + protowire.SizeBytes(inner)
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	b := protowire.AppendTag((*buf)[:0], field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	for i, e := range msgs {
		if len(msgs) > 1 {
			b = protowire.AppendTag(b, fieldBatchMessages, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(entrySize(e.Seq, enc.bodies[i])))
		}
		b = protowire.AppendTag(b, fieldMessageSeq, protowire.VarintType)
		b = protowire.AppendVarint(b, e.Seq)
		b = append(b, enc.bodies[i]...)
	}
	*buf = b
	return mem.NewBuffer(buf, pool), true
}

// entrySize is the size of a ServerMessage of seq and body.
func entrySize(seq uint64, body []byte) int {
	return protowire.SizeTag(fieldMessageSeq) + protowire.SizeVarint(seq) + len(body)
}

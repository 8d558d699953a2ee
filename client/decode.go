package client

import (
	"errors"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file decodes the server's message frames (a ServerMessage, or a
// batch of them) by hand, straight into the Messages the application
// gets: no ConnectResponse, ServerMessage, Source or Timestamp is built
// for them, and a string a message shares with the one before it (its
// topic, its source) is not allocated again. Every other frame, and any
// message frame that is not exactly what tether sends (an unknown field,
// a field of another wire type, invalid UTF-8), is decoded by the proto
// codec, as before, so the result is always what proto decoding would
// give.

// inFrame is what a stream's reader receives a server frame into, through
// streamCodec: msgs for a message or batch frame, frame for any other.
// The reader reuses it: last keeps the strings of the last message
// decoded.
type inFrame struct {
	msgs  []*Message
	frame *tetherv1.ConnectResponse
	last  Message
}

// streamCodec is the codec of every session stream (see inFrame):
// grpc-go's proto codec but for inFrame.
var streamCodec encoding.CodecV2 = frameCodec{std: encoding.GetCodecV2(grpcproto.Name)}

type frameCodec struct{ std encoding.CodecV2 }

// Name is the content subtype: proto, as the standard codec's.
func (frameCodec) Name() string { return grpcproto.Name }

// Marshal encodes v with the standard proto codec.
func (c frameCodec) Marshal(v any) (mem.BufferSlice, error) { return c.std.Marshal(v) }

// Unmarshal decodes an inFrame (see decode), anything else with the
// standard proto codec.
func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	in, ok := v.(*inFrame)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return in.decode(buf.ReadOnlyData())
}

// errNotFast sends a frame to the proto codec.
var errNotFast = errors.New("not a frame decoded by hand")

// decode fills in from the encoded ConnectResponse b.
func (in *inFrame) decode(b []byte) error {
	in.msgs, in.frame = in.msgs[:0], nil
	if err := in.decodeMessages(b); err == nil {
		return nil
	}
	in.msgs = in.msgs[:0]
	f := &tetherv1.ConnectResponse{}
	if err := proto.Unmarshal(b, f); err != nil {
		return err
	}
	in.frame = f
	return nil
}

// Field numbers of the frames decoded here (see tether_service.proto and
// frames.proto).
const (
	fieldResponseMessage protowire.Number = 4 // ConnectResponse.message
	fieldResponseBatch   protowire.Number = 9 // ConnectResponse.batch
	fieldBatchMessages   protowire.Number = 1 // ServerMessageBatch.messages
)

// decodeMessages decodes b when it is a message or a batch frame and
// nothing else; errNotFast otherwise.
func (in *inFrame) decodeMessages(b []byte) error {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType || (num != fieldResponseMessage && num != fieldResponseBatch) {
		return errNotFast
	}
	v, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return errNotFast // a malformed frame, or more than one member
	}
	if num == fieldResponseMessage {
		return in.decodeMessage(v)
	}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 || num != fieldBatchMessages || typ != protowire.BytesType {
			return errNotFast
		}
		e, m := protowire.ConsumeBytes(v[n:])
		if m < 0 {
			return errNotFast
		}
		if err := in.decodeMessage(e); err != nil {
			return err
		}
		v = v[n+m:]
	}
	return nil
}

// decodeMessage appends the ServerMessage b to in.msgs.
func (in *inFrame) decodeMessage(b []byte) error {
	m := &Message{PublishedAt: time.Unix(0, 0).UTC()}
	var sec, nsec int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errNotFast
		}
		b = b[n:]
		if num == 1 || num == 8 { // seq, published_at
			if num == 1 && typ == protowire.VarintType {
				v, k := protowire.ConsumeVarint(b)
				if k < 0 {
					return errNotFast
				}
				m.Seq, b = v, b[k:]
				continue
			}
			if num == 8 && typ == protowire.BytesType {
				v, k := protowire.ConsumeBytes(b)
				if k < 0 || !timestamp(v, &sec, &nsec) {
					return errNotFast
				}
				m.PublishedAt, b = time.Unix(sec, nsec).UTC(), b[k:]
				continue
			}
			return errNotFast
		}
		if typ != protowire.BytesType {
			return errNotFast
		}
		v, k := protowire.ConsumeBytes(b)
		if k < 0 {
			return errNotFast
		}
		b = b[k:]
		if !in.field(m, num, v) {
			return errNotFast
		}
	}
	in.last.Topic, in.last.ContentType = m.Topic, m.ContentType
	in.last.SourceSession, in.last.SourceClient = m.SourceSession, m.SourceClient
	in.msgs = append(in.msgs, m)
	return nil
}

// field sets m's length-delimited field num from v; false when it is not
// one this decoder takes.
func (in *inFrame) field(m *Message, num protowire.Number, v []byte) bool {
	switch num {
	case 2:
		return in.str(&m.Topic, in.last.Topic, v)
	case 3:
		m.Payload = append([]byte(nil), v...)
		return true
	case 4:
		return in.str(&m.ContentType, in.last.ContentType, v)
	case 5:
		return header(m, v)
	case 6:
		return in.str(&m.CorrelationID, "", v)
	case 7:
		return in.source(m, v)
	}
	return false
}

// str sets *s to v, as prev when it holds the same bytes (no allocation);
// false when v is not UTF-8 (the proto codec then reports it).
func (in *inFrame) str(s *string, prev string, v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	if string(v) == prev {
		*s = prev
	} else {
		*s = string(v)
	}
	return true
}

// source sets m's source from the Source message v.
func (in *inFrame) source(m *Message, v []byte) bool {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		s, k := protowire.ConsumeBytes(v[n:])
		if k < 0 {
			return false
		}
		v = v[n+k:]
		switch num {
		case 1:
			if !in.str(&m.SourceSession, in.last.SourceSession, s) {
				return false
			}
		case 2:
			if !in.str(&m.SourceClient, in.last.SourceClient, s) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// header adds the map entry v to m.Headers.
func header(m *Message, v []byte) bool {
	var key, val string
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) {
			return false
		}
		s, k := protowire.ConsumeBytes(v[n:])
		if k < 0 || !utf8.Valid(s) {
			return false
		}
		v = v[n+k:]
		if num == 1 {
			key = string(s)
		} else {
			val = string(s)
		}
	}
	if m.Headers == nil {
		m.Headers = make(map[string]string)
	}
	m.Headers[key] = val
	return true
}

// timestamp merges the google.protobuf.Timestamp v into sec and nsec.
func timestamp(v []byte, sec, nsec *int64) bool {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 || typ != protowire.VarintType || (num != 1 && num != 2) {
			return false
		}
		x, k := protowire.ConsumeVarint(v[n:])
		if k < 0 {
			return false
		}
		v = v[n+k:]
		if num == 1 {
			*sec = int64(x)
		} else {
			*nsec = int64(int32(x))
		}
	}
	return true
}

package server

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/frames"
)

// frameBox is what stream.recv reads a client frame into. grpc-go ends the
// stream with INTERNAL, before the handler sees anything, when its codec
// fails to decode a message; frameCodec instead decodes a frameBox itself
// and leaves the failure in err, so that the stream ends with
// INVALID_ARGUMENT naming the field (the client violated the protocol). The
// embedded frame makes a frameBox a proto.Message, so a gRPC server without
// frameCodec decodes it as usual.
type frameBox struct {
	*tetherv1.ConnectRequest
	err   error // why the frame could not be decoded; nil when it was
	codec bool  // frameCodec decoded it: the stream may send preparedFrames
}

// frameCodec is the server's gRPC codec: the standard proto codec, except
// that a frameBox is decoded here, with its announced size limit
// (Limits.max_frame_bytes) checked and decode errors kept in the box, and a
// PublishRequest too (see unmarshalPublish).
type frameCodec struct {
	std      encoding.CodecV2
	maxFrame int
}

func newFrameCodec(maxFrame int) *frameCodec {
	return &frameCodec{std: encoding.GetCodecV2(grpcproto.Name), maxFrame: maxFrame}
}

// Name is the content subtype the codec serves: proto, as the standard one.
func (c *frameCodec) Name() string { return grpcproto.Name }

// Marshal sends a preparedFrame's bytes as they are and encodes anything
// else with the standard proto codec.
func (c *frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(*preparedFrame); ok {
		return mem.BufferSlice{p.data}, nil
	}
	return c.std.Marshal(v)
}

// Unmarshal decodes a frameBox itself and anything else with the standard
// proto codec.
func (c *frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if pr, ok := v.(*tetherv1.PublishRequest); ok {
		c.unmarshalPublish(data, pr)
		return nil
	}
	box, ok := v.(*frameBox)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	box.codec = true
	if n := data.Len(); n > c.maxFrame {
		box.err = status.Errorf(codes.InvalidArgument, "a frame of %d bytes exceeds the limit of %d bytes (Welcome.limits.max_frame_bytes): "+
			"keep payloads within Welcome.limits.max_message_bytes", n, c.maxFrame)
		return nil
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := proto.Unmarshal(buf.ReadOnlyData(), box.ConnectRequest); err != nil {
		box.err = decodeError(buf.ReadOnlyData(), err, box.ConnectRequest, "frame", "send a serialized tether.v1.ConnectRequest")
	}
	return nil
}

// undecodableField is the field number (the largest there is) under which
// unmarshalPublish leaves, in the request's unknown fields, why the request
// could not be decoded, for Publish to answer with (see undecodable).
const undecodableField = protowire.MaxValidNumber

// unmarshalPublish decodes a PublishRequest. One that cannot be decoded is
// left empty but for the reason, so that Publish answers INVALID_ARGUMENT
// naming the field; grpc-go would answer a codec error with INTERNAL.
func (c *frameCodec) unmarshalPublish(data mem.BufferSlice, pr *tetherv1.PublishRequest) {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	err := proto.Unmarshal(buf.ReadOnlyData(), pr)
	if err == nil {
		return
	}
	msg := status.Convert(decodeError(buf.ReadOnlyData(), err, pr, "request", "send a serialized tether.v1.PublishRequest")).Message()
	proto.Reset(pr)
	pr.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, undecodableField, protowire.BytesType), msg))
}

// undecodable returns the INVALID_ARGUMENT that unmarshalPublish left in
// pr, or nil. (A client that sends such a field itself only gets the
// status it asked for.)
func undecodable(pr *tetherv1.PublishRequest) error {
	b := pr.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil
		}
		if num == undecodableField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[:m])
			return status.Error(codes.InvalidArgument, strings.ToValidUTF8(string(v), "\uFFFD"))
		}
		b = b[m:]
	}
	return nil
}

// decodeError is the status of a message b of m's type (a "frame" or a
// "request") that failed to decode with err: INVALID_ARGUMENT, naming the
// field at fault when it can be found, else saying what to send.
func decodeError(b []byte, err error, m proto.Message, what, advice string) error {
	md := m.ProtoReflect().Descriptor()
	if field, why := badField(b, md, string(md.Name())); field != "" {
		return status.Errorf(codes.InvalidArgument, "undecodable %s: field %s %s: fix the client; do not send this %s again", what, field, why, what)
	}
	return status.Errorf(codes.InvalidArgument, "undecodable %s: %v: %s", what, err, advice)
}

// badField walks the wire encoding b of a message of type md and returns
// the path of the first field that cannot be decoded (its value is cut
// short or a string is not UTF-8), and why; "" when it finds none.
func badField(b []byte, md protoreflect.MessageDescriptor, path string) (string, string) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return path, fmt.Sprintf("has a malformed field tag (%v): the bytes are not a protobuf message", protowire.ParseError(n))
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		name := fmt.Sprintf("%s.%d", path, num)
		if fd != nil {
			name = path + "." + string(fd.Name())
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return name, fmt.Sprintf("is malformed (%v)", protowire.ParseError(n))
		}
		v := b[:n]
		b = b[n:]
		if fd == nil || typ != protowire.BytesType {
			continue
		}
		val, _ := protowire.ConsumeBytes(v)
		switch fd.Kind() {
		case protoreflect.StringKind:
			if !utf8.Valid(val) {
				return name, "is not valid UTF-8 (protobuf strings must be)"
			}
		case protoreflect.MessageKind:
			if f, why := badField(val, fd.Message(), name); f != "" {
				return f, why
			}
		}
	}
	return "", ""
}

// grpcRecvLimit is gRPC's own receive limit: frames.RecvFactor (2) times
// Limits.max_frame_bytes, so that a frame somewhat above the announced
// limit reaches frameCodec and ends the stream with INVALID_ARGUMENT naming
// the limit. Only a frame beyond this is refused by grpc-go itself, with
// RESOURCE_EXHAUSTED "received message larger than max", which it writes
// before the handler can answer (grpc-go's serverStream.RecvMsg writes the
// status of any receive error at once).
func (srv *Server) grpcRecvLimit() int { return frames.RecvFactor * srv.maxFrameBytes() }

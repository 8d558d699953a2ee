package codecbench

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

var sizes = []int{64, 1024}

// codec is what grpc-go marshals every message with.
func codec(b *testing.B) encoding.CodecV2 {
	c := encoding.GetCodecV2("proto")
	if c == nil {
		b.Fatal("no proto codec registered")
	}
	return c
}

// serverFrame is a message as the server writes it: a topic message with a
// seq and a publish time, no headers, no source.
func serverFrame(payload []byte) *tetherv1.ConnectResponse {
	return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: &tetherv1.ServerMessage{
		Seq:         123456,
		Topic:       "prices.eurusd",
		Payload:     payload,
		PublishedAt: timestamppb.New(time.Unix(1_700_000_000, 123_456_789)),
	}}}
}

// clientFrame is a message as a client sends it: a seq and a topic.
func clientFrame(payload []byte) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq:     123456,
		Target:  &tetherv1.ClientMessage_Topic{Topic: "prices.eurusd"},
		Payload: payload,
	}}}
}

// The raw twin of each frame is a bare BytesValue with the same payload:
// what a service without a session layer would put on the wire.

func BenchmarkEncode(b *testing.B) {
	c := codec(b)
	for _, n := range sizes {
		payload := make([]byte, n)
		for _, tc := range []struct {
			name string
			msg  any
		}{
			{"raw", wrapperspb.Bytes(payload)},
			{"ConnectResponse", serverFrame(payload)},
			{"ConnectRequest", clientFrame(payload)},
		} {
			b.Run(fmt.Sprintf("%s/%dB", tc.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buf, err := c.Marshal(tc.msg)
					if err != nil {
						b.Fatal(err)
					}
					buf.Free()
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	c := codec(b)
	for _, n := range sizes {
		payload := make([]byte, n)
		for _, tc := range []struct {
			name string
			msg  any
			zero func() any
		}{
			{"raw", wrapperspb.Bytes(payload), func() any { return new(wrapperspb.BytesValue) }},
			{"ConnectResponse", serverFrame(payload), func() any { return new(tetherv1.ConnectResponse) }},
			{"ConnectRequest", clientFrame(payload), func() any { return new(tetherv1.ConnectRequest) }},
		} {
			b.Run(fmt.Sprintf("%s/%dB", tc.name, n), func(b *testing.B) {
				buf, err := c.Marshal(tc.msg)
				if err != nil {
					b.Fatal(err)
				}
				wire := mem.BufferSlice{mem.SliceBuffer(buf.Materialize())}
				buf.Free()
				b.SetBytes(int64(wire.Len()))
				b.ReportAllocs()
				for b.Loop() {
					// grpc-go decodes each received message into a fresh one.
					if err := c.Unmarshal(wire, tc.zero()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// FuzzFrameCodec: whatever the bytes, frameCodec decodes a frame as
// protobuf does, or keeps an INVALID_ARGUMENT in the box; it never fails
// (grpc-go would turn that into INTERNAL).
func FuzzFrameCodec(f *testing.F) {
	ok, _ := proto.Marshal(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Target: &tetherv1.ClientMessage_Topic{Topic: "t"}, Headers: map[string]string{"k": "v"}, Payload: []byte("p")}}})
	f.Add(ok)
	f.Add([]byte{0xff})
	f.Add([]byte{4<<3 | 2, 100, 1, 2})
	f.Add([]byte{4<<3 | 2, 4, 8<<3 | 2, 2, 0xc3, 0x28})
	f.Add(make([]byte, 200))
	const maxFrame = 128
	c := newFrameCodec(maxFrame)
	f.Fuzz(func(t *testing.T, b []byte) {
		box := &frameBox{ConnectRequest: new(tetherv1.ConnectRequest)}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, box); err != nil {
			t.Fatalf("Unmarshal failed: %v", err)
		}
		want := proto.Unmarshal(b, new(tetherv1.ConnectRequest))
		switch {
		case len(b) > maxFrame:
			if st := status.Convert(box.err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "(Welcome.limits.max_frame_bytes)") {
				t.Fatalf("a %d-byte frame: %v; want INVALID_ARGUMENT naming max_frame_bytes", len(b), box.err)
			}
		case want == nil && box.err != nil:
			t.Fatalf("protobuf decodes it, the codec says %v", box.err)
		case want != nil && status.Code(box.err) != codes.InvalidArgument:
			t.Fatalf("protobuf fails (%v), the codec says %v; want INVALID_ARGUMENT", want, box.err)
		}
		// Anything but a frameBox goes to the standard codec.
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, new(tetherv1.Ack)); (err == nil) != (proto.Unmarshal(b, new(tetherv1.Ack)) == nil) {
			t.Fatalf("the standard codec's result differs: %v", err)
		}
	})
}

func TestBadFieldNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{[]byte{0xff}, "ConnectRequest"},
		{[]byte{4<<3 | 2, 100, 1}, "ConnectRequest.message"},
		{[]byte{1<<3 | 2, 2, 3<<3 | 2, 5}, "ConnectRequest.hello.topics"}, // a topic cut short
		{[]byte{4<<3 | 2, 6, 7<<3 | 2, 4, 1<<3 | 2, 1, 0xff, 0}, "ConnectRequest.message.headers.key"},
		{[]byte{15<<3 | 2, 5, 1}, "ConnectRequest.15"},
	} {
		if got, _ := badField(tc.b, (&tetherv1.ConnectRequest{}).ProtoReflect().Descriptor(), "ConnectRequest"); got != tc.want {
			t.Errorf("badField(%x) = %q; want %q", tc.b, got, tc.want)
		}
	}
}

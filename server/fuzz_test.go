package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// fuzzStream plays a list of frames to the Connect handler, then cancels,
// as a client that goes away would.
type fuzzStream struct {
	grpc.ServerStream
	ctx    context.Context
	frames []*tetherv1.ConnectRequest
	sent   int
}

func (f *fuzzStream) Context() context.Context { return f.ctx }

func (f *fuzzStream) Recv() (*tetherv1.ConnectRequest, error) {
	if len(f.frames) == 0 {
		return nil, status.Error(codes.Canceled, "client went away")
	}
	fr := f.frames[0]
	f.frames = f.frames[1:]
	return fr, nil
}

func (f *fuzzStream) Send(*tetherv1.ConnectResponse) error {
	f.sent++
	return nil
}

// splitFrames decodes data as length-prefixed ConnectRequest frames (one
// length byte each); undecodable frames are kept as empty frames, which the
// server must reject cleanly too.
func splitFrames(data []byte) []*tetherv1.ConnectRequest {
	var out []*tetherv1.ConnectRequest
	for len(data) > 0 {
		n := int(data[0])
		data = data[1:]
		n = min(n, len(data))
		f := &tetherv1.ConnectRequest{}
		_ = proto.Unmarshal(data[:n], f)
		out = append(out, f)
		data = data[n:]
	}
	return out
}

func joinFrames(frames ...*tetherv1.ConnectRequest) []byte {
	var out []byte
	for _, f := range frames {
		b, _ := proto.Marshal(f)
		out = append(out, byte(len(b)))
		out = append(out, b...)
	}
	return out
}

// FuzzConnect feeds arbitrary frame sequences to the session handler: it
// must never panic or hang, and must end every stream with OK or a
// deliberate status, never Unknown or Internal.
func FuzzConnect(f *testing.F) {
	msg := func(seq uint64, topic string) *tetherv1.ConnectRequest {
		return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: topic}, Payload: []byte("p"), CorrelationId: "c"}}}
	}
	hello := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{ClientId: "f", Topics: []string{"t"}}}}
	f.Add(joinFrames(hello))
	f.Add(joinFrames(hello, msg(1, "t"), msg(2, "t"), &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: 2}}}))
	f.Add(joinFrames(hello, msg(0, "t"), msg(5, "t")))
	f.Add(joinFrames(hello, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: []string{"a", "a", " "}}}}))
	f.Add(joinFrames(hello, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}},
		&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: 1}}},
		&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "bye"}}}))
	f.Add(joinFrames(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{
		Resume: &tetherv1.Resume{SessionId: "x", ResumeToken: "y", LastReceivedSeq: 9}}}}, hello))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		srv, err := New(WithServerID("fuzz"))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ss := &fuzzStream{ctx: ctx, frames: splitFrames(data)}
		done := make(chan error, 1)
		go func() { done <- (&service{srv: srv}).Connect(ss) }()
		select {
		case err := <-done:
			switch c := status.Code(err); c {
			case codes.Unknown, codes.Internal:
				t.Fatalf("stream ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the handler did not return")
		}
	})
}

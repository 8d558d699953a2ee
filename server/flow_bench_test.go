package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// The flow benchmarks measure client→server frames on one stream over
// loopback, beside raw grpc-go in the same run:
//
//	go test -run '^$' -bench 'StreamFrames|AckRoundTrip' -benchtime 2s ./server/
//
// StreamFrames/raw is what DefaultFrameRate is chosen from: a grpc-go
// stream whose handler only reads, and a client sending small frames flat
// out. StreamFrames/tether sends the same frames (stale Acks, which the
// server reads and ignores) to a default server, so it shows what the
// frame-rate pacing costs an honest stream (nothing, when the default
// sits above what one stream can send).

// rawTether is raw grpc-go: a TetherService whose Connect reads every frame
// and answers an ack_now message with an Ack, and nothing else.
type rawTether struct {
	tetherv1.UnimplementedTetherServiceServer
}

func (rawTether) Connect(ss tetherv1.TetherService_ConnectServer) error {
	for {
		f, err := ss.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m := f.GetMessage(); m.GetAckNow() {
			if err := ss.Send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ack{Ack: &tetherv1.Ack{Seq: m.GetSeq()}}}); err != nil {
				return err
			}
		}
	}
}

func (rawTether) Publish(context.Context, *tetherv1.PublishRequest) (*tetherv1.PublishResponse, error) {
	return &tetherv1.PublishResponse{}, nil
}

// serveRaw starts rawTether on a loopback listener and returns a client
// connection to it.
func serveRaw(b *testing.B) *grpc.ClientConn {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	tetherv1.RegisterTetherServiceServer(gs, rawTether{})
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	return dialBench(b, lis.Addr().String())
}

func dialBench(b *testing.B, addr string) *grpc.ClientConn {
	b.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	return cc
}

// serveTether starts a default tether server on loopback and returns a
// client connection to it.
func serveTether(b *testing.B, opts ...server.Option) *grpc.ClientConn {
	b.Helper()
	_, addr := tethertest.Serve(b, append([]server.Option{server.WithServerID("bench")}, opts...)...)
	return dialBench(b, addr)
}

// openBench opens a Connect stream; with hello set it sends Hello and waits
// for Welcome.
func openBench(b *testing.B, cc *grpc.ClientConn, hello bool) (tetherv1.TetherService_ConnectClient, context.CancelFunc) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	if hello {
		h := &tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Minute)}
		if err := s.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: h}}); err != nil {
			b.Fatal(err)
		}
		if f, err := s.Recv(); err != nil || f.GetWelcome() == nil {
			b.Fatalf("first frame %v, %v; want welcome", f, err)
		}
	}
	return s, cancel
}

// BenchmarkStreamFrames sends b.N small frames on one stream, flat out, and
// reports frames/s. The last frame is a message with ack_now, whose Ack
// shows that the server has read every frame.
func BenchmarkStreamFrames(b *testing.B) {
	b.Run("raw", func(b *testing.B) { streamFrames(b, serveRaw(b), false) })
	b.Run("tether", func(b *testing.B) { streamFrames(b, serveTether(b), true) })
}

func streamFrames(b *testing.B, cc *grpc.ClientConn, hello bool) {
	s, cancel := openBench(b, cc, hello)
	defer cancel()
	stale := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{}}}
	last := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: 1, AckNow: true, Target: &tetherv1.ClientMessage_Topic{Topic: "bench"}, Payload: []byte("x")}}}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := s.Send(stale); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Send(last); err != nil {
		b.Fatal(err)
	}
	for {
		f, err := s.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if f.GetAck().GetSeq() == 1 {
			break
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "frames/s")
}

// BenchmarkAckRoundTrip is a low-rate SendWait as the wire sees it: one
// message with ack_now, then wait for its Ack, b.N times; beside raw
// grpc-go's unary round trip (a Publish that does nothing) in the same run.
// The goal (issue 15) is tether ≤ 1.2× unary.
func BenchmarkAckRoundTrip(b *testing.B) {
	b.Run("unary-raw", func(b *testing.B) {
		c := tetherv1.NewTetherServiceClient(serveRaw(b))
		req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "bench"}, Payload: make([]byte, 64)}
		for b.Loop() {
			if _, err := c.Publish(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tether-ack_now", func(b *testing.B) { ackRoundTrip(b, true) })
	b.Run("tether-no-ack_now", func(b *testing.B) { ackRoundTrip(b, false) })
}

func ackRoundTrip(b *testing.B, ackNow bool) {
	s, cancel := openBench(b, serveTether(b), true)
	defer cancel()
	m := &tetherv1.ClientMessage{AckNow: ackNow, Target: &tetherv1.ClientMessage_Topic{Topic: "bench"}, Payload: make([]byte, 64)}
	f := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: m}}
	for b.Loop() {
		m.Seq++
		if err := s.Send(f); err != nil {
			b.Fatal(err)
		}
		for {
			r, err := s.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if r.GetAck().GetSeq() == m.Seq {
				break
			}
		}
	}
}

// BenchmarkPushC2S sends b.N messages of 64 bytes flat out on one stream
// (to a topic nobody holds) and waits for the Ack of the last; it reports
// messages/s and the Acks the server sent per message (batched under load).
// raw is grpc-go reading the same frames and acking only the last.
func BenchmarkPushC2S(b *testing.B) {
	b.Run("raw", func(b *testing.B) { pushC2S(b, serveRaw(b), false) })
	b.Run("tether", func(b *testing.B) { pushC2S(b, serveTether(b), true) })
}

func pushC2S(b *testing.B, cc *grpc.ClientConn, hello bool) {
	s, cancel := openBench(b, cc, hello)
	defer cancel()
	n := uint64(b.N)
	acks := make(chan int, 1)
	go func() {
		count := 0
		defer func() { acks <- count }()
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			if a := r.GetAck(); a != nil {
				count++
				if a.GetSeq() == n {
					return
				}
			}
		}
	}()
	m := &tetherv1.ClientMessage{Target: &tetherv1.ClientMessage_Topic{Topic: "bench"}, Payload: make([]byte, 64)}
	f := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: m}}
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		m.Seq, m.AckNow = i+1, i+1 == n
		if err := s.Send(f); err != nil {
			b.Fatal(err)
		}
	}
	count := <-acks
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64(count)/float64(n), "acks/msg")
}

// BenchmarkPublishParallel is a backend calling Publish at concurrency 50
// (to a topic nobody holds) on one default server: the rate one node
// serves, which tetherd's --publish-rate default must stay above.
func BenchmarkPublishParallel(b *testing.B) {
	c := tetherv1.NewTetherServiceClient(serveTether(b))
	req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "bench"}, Payload: make([]byte, 64)}
	b.SetParallelism(25) // × GOMAXPROCS 2
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Publish(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

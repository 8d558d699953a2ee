package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
)

// BenchmarkRelay measures the SDK's send and receive path end to end:
// one session sends b.N messages of 64 bytes with Send to another's
// client id, which takes them with Receive, through a real server on
// loopback, on the server's and the SDK's defaults: the receive window,
// the acks and the SDK's pacing to the server's frame rate all take part.
func BenchmarkRelay(b *testing.B) {
	_, addr := tethertest.Serve(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recv := newBenchSession(b, client.WithAddrs(addr), client.WithClientID("b"))
	send := newBenchSession(b, client.WithAddrs(addr), client.WithClientID("a"))
	if err := recv.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	if err := send.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := recv.Receive(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := send.Send(ctx, client.Message{ClientID: "b", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func newBenchSession(b *testing.B, opts ...client.Option) *client.Session {
	b.Helper()
	s, err := client.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// benchFake is an in-process TetherService for the SDK-only benchmarks:
// it announces a frame rate that does not bind (so the SDK's pacing runs
// without holding it back), acks every client message at once, and
// pushes pushN messages of 64 bytes, never more than a window of 1024
// sent and unacked.
type benchFake struct {
	tetherv1.UnimplementedTetherServiceServer
	pushN int
}

func (f *benchFake) Connect(st tetherv1.TetherService_ConnectServer) error {
	if _, err := st.Recv(); err != nil {
		return err
	}
	var mu sync.Mutex // st.Send, from the reader and the pusher
	send := func(r *tetherv1.ConnectResponse) error {
		mu.Lock()
		defer mu.Unlock()
		return st.Send(r)
	}
	w := &tetherv1.Welcome{SessionId: "s1", ResumeToken: "tok", HeartbeatInterval: durationpb.New(15 * time.Second), HeartbeatMisses: 3,
		ResumeStatus:  tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED,
		Limits:        &tetherv1.Limits{MaxFramesPerSecond: 1e7, MaxFrameBurst: 1e5},
		ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 1024, Bytes: 4 << 20}}
	if err := send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Welcome{Welcome: w}}); err != nil {
		return err
	}
	acked := make(chan uint64, 1)
	go func() {
		payload := make([]byte, 64)
		var a uint64
		for seq := uint64(1); seq <= uint64(f.pushN); seq++ {
			for seq-a > 1024 {
				n, ok := <-acked
				if !ok {
					return
				}
				a = max(a, n)
			}
			if send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: &tetherv1.ServerMessage{Seq: seq, Payload: payload}}}) != nil {
				return
			}
		}
	}()
	defer close(acked)
	for {
		r, err := st.Recv()
		if err != nil {
			return err
		}
		switch x := r.GetFrame().(type) {
		case *tetherv1.ConnectRequest_Message:
			err = send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ack{Ack: &tetherv1.Ack{Seq: x.Message.GetSeq()}}})
		case *tetherv1.ConnectRequest_Ping:
			err = send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{Id: x.Ping.GetId(), SentAt: x.Ping.GetSentAt()}}})
		case *tetherv1.ConnectRequest_Close:
			return nil
		case *tetherv1.ConnectRequest_Ack:
			select { // latest value
			case <-acked:
			default:
			}
			acked <- x.Ack.GetSeq()
		}
		if err != nil {
			return err
		}
	}
}

// benchSession serves f on bufconn and returns a session dialing it.
func benchSession(b *testing.B, f *benchFake) *client.Session {
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	tetherv1.RegisterTetherServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	s := newBenchSession(b, client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))))
	if err := s.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSDKSend measures the SDK alone sending: Send, the paced
// writer, and the server's acks, against an in-process server that does
// nothing else.
func BenchmarkSDKSend(b *testing.B) {
	s := benchSession(b, &benchFake{})
	ctx := context.Background()
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.Send(ctx, client.Message{Topic: "t", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: payload}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSDKReceive measures the SDK alone receiving: Receive and the
// acks that keep a window of 1024 open, against an in-process server
// that does nothing else.
func BenchmarkSDKReceive(b *testing.B) {
	s := benchSession(b, &benchFake{pushN: b.N})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

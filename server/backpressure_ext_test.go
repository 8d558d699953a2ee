package server_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// A resume whose backlog is larger than the receive window is replayed a
// window at a time as the client acks, and not cut.

func TestResumeWithBacklogIsNotCut(t *testing.T) {
	t.Parallel()
	n := startNode(t, noMaxAge(), server.WithMaxOutboundQueue(64))
	c0 := n.dial(t, "")
	w0 := c0.open(&tetherv1.Hello{})
	c0.close()
	id := w0.GetSessionId()
	waitState(t, n, id, tetherv1.SessionState_SESSION_STATE_DETACHED)
	ctx := context.Background()
	for range 10 { // within the log (64): nothing is lost
		if _, err := n.srv.Publish(ctx, brokerSession(id), []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	c1 := n.dial(t, "")
	h := rvResume(id, w0.GetResumeToken(), 0)
	h.ReceiveWindow = &tetherv1.ReceiveWindow{Messages: 4}
	w1 := c1.open(h)
	if w1.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED || w1.GetReceiveWindow().GetMessages() != 4 {
		t.Fatalf("resume: %v", w1)
	}
	// The client is reading promptly; one more message arrives.
	if _, err := n.srv.Publish(ctx, brokerSession(id), []byte("y"), ""); err != nil {
		t.Fatal(err)
	}
	got := 0
	for f := range c1.frames {
		if f.GetMessage() != nil {
			got++
			if f.GetMessage().GetSeq() != uint64(got) {
				t.Fatalf("got seq %d, want %d", f.GetMessage().GetSeq(), got)
			}
			c1.send(ack(f.GetMessage().GetSeq()))
			if got == 11 {
				return // all delivered: fine
			}
		}
		if g := f.GetGoAway(); g != nil {
			t.Fatalf("resumed client cut with %v %q after %d of 11 messages", g.GetReason(), g.GetMessage(), got)
		}
	}
}

// A client that stops reading blocks the writer in ss.Send; the
// slow-consumer cut (OverflowDisconnect) or the heartbeat deadline still
// ends the handler.

// startObservedNode serves a tether server on an in-memory bufconn listener
// (so that it works inside a testing/synctest bubble as well as outside)
// and counts the Connect handlers running. The client connection has small
// fixed flow-control windows (this also disables BDP): the server's Send
// blocks after ~128 KiB if the client does not read.
func startObservedNode(t *testing.T, opts ...server.Option) (*server.Server, *grpc.ClientConn, *atomic.Int32) {
	t.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var running atomic.Int32
	obs := func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		running.Add(1)
		defer running.Add(-1)
		return h(s, ss)
	}
	gs := grpc.NewServer(append(srv.GRPCServerOptions(), grpc.ChainStreamInterceptor(obs))...)
	srv.Register(gs)
	lis := bufconn.Listen(1 << 20)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	cc, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(tethertest.Dialer(lis)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(); gs.Stop(); <-done; _ = srv.Close(); _ = lis.Close() })
	return srv, cc, &running
}

func fastProfile() server.Option {
	p := profile.Datacenter()
	p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0
	return server.WithProfile(p)
}

func TestNonReadingClientIsCut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv, cc, running := startObservedNode(t, fastProfile(), server.WithMaxOutboundQueue(8), server.WithOverflowPolicy(server.OverflowDisconnect))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Second)}))
		f, err := s.Recv()
		if err != nil || f.GetWelcome() == nil {
			t.Fatalf("welcome: %v %v", f, err)
		}
		welcomed := time.Now()
		id := f.GetWelcome().GetSessionId()
		// From now on the client neither reads nor sends (its app is stuck;
		// its transport is alive).
		payload := make([]byte, 100<<10)
		for range 9 { // the 9th exceeds max_outbound_queue 8 -> slow-consumer cut
			if _, err := srv.Publish(ctx, brokerSession(id), payload, ""); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // the writer wrote what the window takes and blocks in ss.Send
		}
		if running.Load() != 1 {
			t.Fatal("the Connect handler ended before the heartbeat deadline; the test no longer blocks the writer")
		}
		// The heartbeat deadline (1s × 3 + 0.5s), or the slow-consumer cut
		// once its GoAway has had the flush window (5s) to be written, ends
		// the handler though its writer is blocked in ss.Send.
		deadAfter := f.GetWelcome().GetDeadAfter().AsDuration()
		limit := deadAfter + 5*time.Second
		for running.Load() != 0 {
			if time.Since(welcomed) > limit {
				t.Fatalf("Connect handler still running %v after the slow-consumer cut, past dead_after (%v) and the flush window: writer blocked in ss.Send", limit, deadAfter)
			}
			time.Sleep(10 * time.Millisecond) // fake time: polls cost nothing
		}
		ended := time.Since(welcomed)
		for {
			if _, err = s.Recv(); err != nil {
				break
			}
		}
		if c := statusCode(err); c != codes.DeadlineExceeded && c != codes.ResourceExhausted {
			t.Fatalf("the stream ended with %v; want DEADLINE_EXCEEDED (heartbeat) or RESOURCE_EXHAUSTED (slow consumer)", err)
		}
		t.Logf("the handler ended %v after Welcome (dead_after %v): %v", ended, deadAfter, err)
	})
}

// Control frames (Pong, Error, Ack) are bounded: a client that sends pings
// and never reads does not grow the server's heap.

func TestPingFloodDoesNotGrowTheHeap(t *testing.T) {
	// Not parallel: it measures the process's heap, which other tests'
	// allocations would disturb.
	synctest.Test(t, func(t *testing.T) {
		// The frame-rate limit would cut this flood; lift it to see that
		// the pongs coalesce.
		_, cc, _ := startObservedNode(t, noMaxAge(), server.WithFrameRate(1e9, 1e9))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpb.New(time.Minute)}))
		if f, err := s.Recv(); err != nil || f.GetWelcome() == nil {
			t.Fatal(f, err)
		}
		heap := func() uint64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		ping := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1}}}
		for range 300_000 {
			if err := s.Send(ping); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // the server has read every ping
		grown := int64(heap()) - int64(before)
		t.Logf("heap grew by %d MiB after 300k pings from a client that does not read", grown>>20)
		if grown > 16<<20 {
			t.Fatalf("unbounded control queue: +%d MiB", grown>>20)
		}
	})
}

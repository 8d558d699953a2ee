package client_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

func waitState(t *testing.T, s *client.Session, want client.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want %v", s.State(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// R1: Subscribe while no stream carries the session returns nil, but a
// successful resume ignores Hello.topics: the subscription is silently lost.
func TestRegressSubscribeWhileReconnectingIsKept(t *testing.T) {
	srv, addr := tethertest.Serve(t)
	p := proxyTo(t, addr)
	s := newSession(t, client.WithAddrs(p.Addr()), client.WithClientID("dev"), fastBackoff)
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	p.Refuse(true)
	p.Reset()
	waitState(t, s, client.StateReconnecting)
	if err := s.Subscribe(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	p.Refuse(false)
	waitState(t, s, client.StateConnected)
	if st := s.Stats(); st.ResumeStatus.String() != "RESUME_STATUS_RESUMED" {
		t.Fatalf("not resumed: %v", st.ResumeStatus)
	}
	// The topic is re-subscribed by a frame right after Welcome: it takes
	// effect a moment after the connected state.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, err := srv.Publish(ctx, broker.Topic("news"), []byte("x"), "")
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Subscribe returned nil but the resumed session is not subscribed")
		}
	}
}

// R2: calling Close from a WithOnState callback deadlocks Close (it waits
// for the dispatcher, which is running the callback).
func TestRegressCloseFromOnState(t *testing.T) {
	_, addr := tethertest.Serve(t)
	var s *client.Session
	res := make(chan error, 1)
	s, err := client.New(client.WithAddrs(addr), client.WithOnState(func(c client.StateChange) {
		if c.State == client.StateConnected {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			res <- s.Close(ctx) // with context.Background this never returns
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("Close from OnState: %v", err)
	}
}

// R3: Reconnect called before the first stream exists is latched and kills
// the first stream right after its Welcome.
func TestRegressReconnectBeforeConnectIsNotLatched(t *testing.T) {
	_, addr := tethertest.Serve(t)
	s := newSession(t, client.WithAddrs(addr))
	s.Reconnect()
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st := s.Stats(); st.Reconnects != 0 {
		t.Fatalf("%d reconnects of a stream that was never in use (last error %v)", st.Reconnects, st.LastError)
	}
}

// R4: Close whose ctx ends before the loop does never closes the backends:
// ClientConns and health-watch goroutines leak.
func TestRegressCloseTimeoutStillStopsBackends(t *testing.T) {
	_, addr := tethertest.Serve(t)
	s, err := client.New(client.WithAddrs(addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	waitState(t, s, client.StateClosed)
	n := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		if n = strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*backend).watch"); n == 0 {
			break
		}
	}
	// clean up for goleak
	ctx2, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer c2()
	_ = s.Close(ctx2)
	if n > 0 {
		t.Fatalf("session closed, %d health watch goroutine(s) (and their ClientConns) still running", n)
	}
}

// R5: Close does not flush: the Close frame jumps ahead of messages that
// Send accepted, so they are silently discarded.
func TestRegressCloseFlushesQueuedSends(t *testing.T) {
	_, addr := tethertest.Serve(t)
	sink := newSession(t, client.WithAddrs(addr), client.WithClientID("sink"), client.WithTopics("t"))
	ctx := ctxT(t)
	if err := sink.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := client.New(client.WithAddrs(addr), client.WithClientID("src"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if err := s.Send(ctx, client.Message{Topic: "t", Payload: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		if _, err := sink.Receive(rctx); err != nil {
			break
		}
		got.Add(1)
	}
	if got.Load() != n {
		t.Fatalf("Send returned nil for %d messages, Close returned nil, the server got %d", n, got.Load())
	}
}

// R8: a message the server would reject (oversized, bad topic) is refused
// by Send, instead of ending stream after stream.
func TestRegressPoisonMessageIsRefusedBySend(t *testing.T) {
	_, addr := tethertest.Serve(t, server.WithMaxMessageBytes(1024))
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("p"), fastBackoff)
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, client.Message{Topic: "t", Payload: make([]byte, 2048)}); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("oversized Send = %v, want ErrTooLarge", err)
	}
	if err := s.Send(ctx, client.Message{Topic: "bad topic", Payload: []byte("x")}); err == nil {
		t.Fatal("Send to a topic with a space succeeded")
	}
	if err := s.Subscribe(ctx, ""); err == nil {
		t.Fatal("Subscribe to an empty topic succeeded")
	}
	if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: []byte("small")}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Reconnects != 0 {
		t.Fatalf("%d reconnects: %v", st.Reconnects, st.LastError)
	}
}

// A stream the server ends with INVALID_ARGUMENT is not retried forever:
// the session closes with the server's reason.
func TestRegressProtocolErrorClosesTheSession(t *testing.T) {
	_, addr := tethertest.Serve(t, server.WithMaxTopics(1))
	s := newSession(t, client.WithAddrs(addr), client.WithTopics("a", "b"), fastBackoff) // two topics in Hello: over the limit
	err := s.Connect(ctxT(t))
	if !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), "limit is 1") {
		t.Fatalf("Connect = %v; want ErrClosed with the server's reason", err)
	}
	if st := s.Stats(); st.State != client.StateClosed || st.Reconnects > 0 {
		t.Fatalf("stats = %+v", st)
	}
}

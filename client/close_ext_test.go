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

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// Close: from a callback, with a short context, after queued sends, and
// what Connect says afterwards.

// Close may be called from a WithOnState callback: it does not wait for
// callbacks. Done closes once the last callback, StateClosed's, returned.
// Before its fix: calling Close from a WithOnState callback deadlocked
// Close (it waited for the dispatcher, which was running the callback).
func TestCloseFromOnState(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	var s *client.Session
	res := make(chan error, 1)
	var closedSeen atomic.Bool
	s, err := client.New(client.WithAddrs(addr), client.WithOnState(func(c client.StateChange) {
		switch c.State {
		case client.StateConnected:
			res <- s.Close(context.Background())
		case client.StateClosed:
			closedSeen.Store(true)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Close from OnState: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Close from OnState did not return")
	}
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatal("Done not closed after Close")
	}
	if !closedSeen.Load() {
		t.Fatal("Done closed before the StateClosed callback ran")
	}
}

// Done of a session never started closes with Close.
func TestDoneOfASessionNeverStarted(t *testing.T) {
	t.Parallel()
	s, err := client.New(client.WithAddrs("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
		t.Fatal("Done closed before Close")
	default:
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
}

// Close whose context ends first still stops the backends. Before its fix:
// Close whose ctx ends before the loop does never closes the backends:
// ClientConns and health-watch goroutines leak.
func TestCloseTimeoutStillStopsBackends(t *testing.T) {
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

// Close flushes what Send accepted before it says goodbye. Before its fix:
// Close does not flush: the Close frame jumps ahead of messages that Send
// accepted, so they are silently discarded.
func TestCloseFlushesQueuedSends(t *testing.T) {
	t.Parallel()
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

// Connect on a closed session reports the close. Before its fix: Connect on
// a session that has ended returns nil ("connected") about half the time:
// s.connected is still the channel closed by the last StateConnected, and
// Connect's select sees it and s.done both ready.
func TestConnectAfterCloseReportsTheClose(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("c"))
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	nils := 0
	for range 100 {
		if s.Connect(ctx) == nil {
			nils++
		}
	}
	if nils > 0 {
		t.Fatalf("Connect returned nil %d times of 100 on a closed session (state %v)", nils, s.State())
	}
}

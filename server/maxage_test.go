package server

import (
	"context"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/peer"
)

// A connection's streams share the start of its first; another connection
// has its own; a context without a peer is its own start; an entry goes
// with its connection.
func TestConnAges(t *testing.T) {
	t.Parallel()
	var ages connAges
	func() { // the peers are unreachable once it returns
		t0 := time.Unix(1000, 0)
		p1, p2 := &peer.Peer{}, &peer.Peer{}
		c1, c2 := peer.NewContext(context.Background(), p1), peer.NewContext(context.Background(), p2)
		if got := ages.start(c1, t0); !got.Equal(t0) {
			t.Fatalf("first stream of a connection: start %v; want %v", got, t0)
		}
		if got := ages.start(c1, t0.Add(time.Minute)); !got.Equal(t0) {
			t.Fatalf("second stream of the same connection: start %v; want the first's, %v", got, t0)
		}
		if got := ages.start(c2, t0.Add(time.Hour)); !got.Equal(t0.Add(time.Hour)) {
			t.Fatalf("first stream of another connection: start %v; want its own", got)
		}
		if got := ages.start(context.Background(), t0.Add(2*time.Hour)); !got.Equal(t0.Add(2 * time.Hour)) {
			t.Fatalf("no peer: start %v; want now", got)
		}
		if n := entries(&ages); n != 2 {
			t.Fatalf("%d entries for 2 connections", n)
		}
	}()
	// Cleanups run after a GC finds the peers unreachable, on a goroutine
	// of the runtime: a bounded number of collections, not a wait.
	for i := 0; i < 100 && entries(&ages) > 0; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := entries(&ages); n != 0 {
		t.Fatalf("%d entries left after their connections were collected; want 0", n)
	}
}

func entries(c *connAges) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

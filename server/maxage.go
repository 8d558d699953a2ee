package server

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
	"weak"

	"google.golang.org/grpc/peer"
)

// connAges remembers when each connection's first tether stream started:
// the age a stream's MAX_AGE is counted from. grpc-go's MaxConnectionAge
// counts from the connection, not the stream, and tells no handler when it
// fires (GRPC-NOTES §1.6).
//
// grpc-go gives every stream of a connection the same *peer.Peer (it
// attaches it once per connection, in Server.serveStreams), so the pointer
// names the connection. A weak pointer keys the entry and a cleanup drops
// it once the connection and its streams are gone. This replaces a
// stats.Handler's TagConn, which would have stamped the connection exactly
// but made grpc-go build a stats event and read the clock for every
// message sent and received: 11–12 % of the server's CPU per pushed
// message (tether-bench push, s2c).
//
// The price: a connection that carried only other calls for a while before
// its first tether stream is taken to be as old as that stream, and such a
// stream may meet grpc-go's GOAWAY and grace before its MAX_AGE; it then
// resumes after a broken stream rather than a go_away.
//
// A plain map under a mutex, taken once per stream opened: a sync.Map
// cost each connection about 150 bytes more (its entry and trie nodes, and
// the boxed time), which shows in an idle session's memory when each
// session has a connection of its own.
type connAges struct {
	mu sync.Mutex
	m  map[weak.Pointer[peer.Peer]]time.Time
}

// start returns when the first stream of ctx's connection started, now if
// ctx's is the first.
func (c *connAges) start(ctx context.Context, now time.Time) time.Time {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return now
	}
	w := weak.Make(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[w]; ok {
		return t
	}
	if c.m == nil {
		c.m = make(map[weak.Pointer[peer.Peer]]time.Time)
	}
	c.m[w] = now
	runtime.AddCleanup(p, c.forget, w)
	return now
}

// forget drops the entry of a connection that is gone.
func (c *connAges) forget(w weak.Pointer[peer.Peer]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, w)
}

// maxAgeAt returns when a stream on the connection of ctx should get
// GoAway{MAX_AGE}: before grpc-go's own GOAWAY (at MaxConnectionAge minus
// up to 10% jitter) and its hard close (Grace later), spread uniformly over
// [70%, 85%] of the age so that a fleet's streams migrate gradually. It
// returns the zero time when the profile sets no MaxConnectionAge.
//
// A stream that starts on an already old connection (grpcurl and generated
// stubs reuse theirs) is given a minimum life, so it is not sent away
// straight after Welcome, over and over.
func (srv *Server) maxAgeAt(ctx context.Context) time.Time {
	age := srv.cfg.profile.Server.MaxConnectionAge
	if age <= 0 || age == time.Duration(1<<63-1) {
		return time.Time{}
	}
	start := srv.connAges.start(ctx, time.Now())
	frac := 0.70 + 0.15*rand.Float64()
	at := start.Add(time.Duration(float64(age) * frac))
	// A stream opened late on an old connection still gets a useful life:
	// half the grace (the transport closes no earlier than a whole grace
	// after its own GOAWAY, which comes after this stream started), or
	// half the age when the grace is unbounded.
	life := age / 2
	if g := srv.cfg.profile.Server.MaxConnectionAgeGrace; g > 0 && g < age {
		life = g / 2
	}
	if earliest := time.Now().Add(life); at.Before(earliest) {
		at = earliest
	}
	return at
}

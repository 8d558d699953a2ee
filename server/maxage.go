package server

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/stats"
)

// connClock is a stats.Handler that stamps each connection's start time on
// its context, so a stream can tell how old its connection is: grpc-go's
// MaxConnectionAge counts from the connection, not the stream, and tells no
// handler when it fires (GRPC-NOTES §1.6).
type connClock struct{}

type connStartKey struct{}

func (connClock) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connStartKey{}, time.Now())
}

func (connClock) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (connClock) HandleRPC(context.Context, stats.RPCStats)                       {}
func (connClock) HandleConn(context.Context, stats.ConnStats)                     {}

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
	start, ok := ctx.Value(connStartKey{}).(time.Time)
	if !ok {
		start = time.Now() // not registered with GRPCServerOptions: the stream's age is the best guess
	}
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

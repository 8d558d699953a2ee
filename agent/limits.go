package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// limits bounds the calls in flight, on the whole agent and per caller. It
// is safe for concurrent use.
type limits struct {
	total, perCaller int

	mu       sync.Mutex
	inFlight int
	byCaller map[string]int
}

func newLimits(total, perCaller int) *limits {
	return &limits{total: total, perCaller: perCaller, byCaller: make(map[string]int)}
}

// acquire takes a slot for caller, or says which limit is reached.
func (l *limits) acquire(caller string) (status int, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight >= l.total {
		return http.StatusServiceUnavailable, fmt.Sprintf("the agent has %d calls in flight, its limit: retry later", l.inFlight)
	}
	if l.byCaller[caller] >= l.perCaller {
		return http.StatusTooManyRequests, fmt.Sprintf("%s has %d calls in flight, the limit per caller: wait for one to end", caller, l.perCaller)
	}
	l.inFlight++
	l.byCaller[caller]++
	return 0, ""
}

func (l *limits) release(caller string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if l.byCaller[caller]--; l.byCaller[caller] <= 0 {
		delete(l.byCaller, caller)
	}
}

// peer is who is at the other end of a connection.
type peer struct {
	caller  string
	foreign bool // another user (the Unix socket's peer credentials), or unknown
	unix    bool // on a Unix socket (no browser can reach it)
}

type peerKey struct{}

// withPeer is the http.Server's ConnContext: it records the caller.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	caller, foreign := peerOf(c)
	return context.WithValue(ctx, peerKey{}, peer{caller: caller, foreign: foreign, unix: c.LocalAddr().Network() == "unix"})
}

func peerFrom(ctx context.Context) peer {
	if p, ok := ctx.Value(peerKey{}).(peer); ok {
		return p
	}
	return peer{caller: "unknown caller"}
}

package server

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// callbacks serializes a session's Handler calls, which keeps the Handler
// contract (see Handler): one call at a time, in order; OnClose once, last,
// and only when an OnConnect returned nil.
//
// A call holds the turn (a channel of one slot) while the Handler runs.
// OnConnect and OnMessage wait for the turn. OnClose never waits: the
// session ends from many places (its own reader after a Close frame,
// another session's reader taking its client id over, timers, Close,
// AdminService), and one of them may be the goroutine whose call holds the
// turn, or wait on it. So end hands OnClose to the call that holds the
// turn, which runs it when the Handler returns, or runs it itself when the
// turn is free.
type callbacks struct {
	turn chan struct{} // holds a token while a call runs

	mu           sync.Mutex
	connected    bool   // an OnConnect returned nil
	ended        bool   // the session ended: no more calls but OnClose
	closePending bool   // OnClose is due once the running call returns
	closeWhy     string // valid once ended
}

func newCallbacks() callbacks { return callbacks{turn: make(chan struct{}, 1)} }

// errEnded is what a call returns, without running the Handler, when the
// session ended before its turn came.
var errEnded = status.Error(codes.Unavailable, "the session has ended: connect again")

// enter waits for the turn. It fails, without the turn, when the session
// ended meanwhile (errEnded) or ctx ended first.
func (c *callbacks) enter(ctx context.Context) error {
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		<-c.turn
		return errEnded
	}
	return nil
}

// leave gives the turn back, having run OnClose first if the session ended
// while the call ran. ok says whether the call was an OnConnect that
// returned nil.
func (c *callbacks) leave(s *Session, ok bool) {
	c.mu.Lock()
	if ok {
		c.connected = true
	}
	if c.closePending {
		c.closePending = false
		c.mu.Unlock()
		s.runOnClose()
		c.mu.Lock()
	}
	<-c.turn
	c.mu.Unlock()
}

// end marks the session ended for the Handler and runs OnClose now, on
// this goroutine, when no call holds the turn; otherwise the holder runs
// it when its call returns. Only the first end counts.
func (c *callbacks) end(s *Session, why string) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended, c.closeWhy = true, why
	select {
	case c.turn <- struct{}{}:
	default:
		c.closePending = true
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	defer func() { <-c.turn }()
	s.runOnClose()
}

// runOnClose runs OnClose, holding the turn, if an OnConnect returned nil.
func (s *Session) runOnClose() {
	s.cb.mu.Lock()
	run, why := s.cb.connected, s.cb.closeWhy
	s.cb.mu.Unlock()
	if run {
		defer s.srv.panicGuard("Handler.OnClose")
		s.srv.cfg.handler.OnClose(s, why)
	}
}

// onConnect runs Handler.OnConnect in the session's turn.
func (s *Session) onConnect(ctx context.Context) error {
	if err := s.cb.enter(ctx); err != nil {
		return err
	}
	ok := false
	defer func() { s.cb.leave(s, ok) }()
	err := s.srv.cfg.handler.OnConnect(ctx, s)
	ok = err == nil
	return err
}

// onMessage runs Handler.OnMessage in the session's turn.
func (s *Session) onMessage(ctx context.Context, m *Message) error {
	if err := s.cb.enter(ctx); err != nil {
		return err
	}
	defer s.cb.leave(s, false)
	return s.srv.cfg.handler.OnMessage(ctx, s, m)
}

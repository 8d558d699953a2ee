package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tetherhq/tether/client"
)

// Agent lends one tether session to local callers over HTTP/JSON: publish,
// request/reply and an event stream (see the package doc for the API). It
// is safe for concurrent use; one Agent may serve several listeners.
type Agent struct {
	cfg    *config
	s      *client.Session
	events *eventLog
	calls  *calls
	lim    *limits
	srv    *http.Server

	startOnce sync.Once
	stopOnce  sync.Once
	stopping  chan struct{} // closed by Shutdown: event streams end
	recvStop  context.CancelFunc
	recvDone  chan struct{}

	mu       sync.Mutex
	last     client.StateChange // the latest connected state
	sessions int                // fresh sessions so far (the first counts)
	own      []string           // the agent's own session ids, latest last (a few)
}

// ownSessions is how many of its session ids the agent remembers, to tell
// its own requests coming back on a topic from replies.
const ownSessions = 16

// New returns an Agent holding a session made from sessionOpts (at least
// client.WithAddrs or another backend option; give a client.WithClientID
// that callers can publish to, so the event stream has a stable address).
// The agent sets client.WithOnState for itself: use [WithOnState] to watch
// the session. New does no I/O: the session connects when the agent
// starts serving.
func New(sessionOpts []client.Option, opts ...Option) (*Agent, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:      cfg,
		events:   newEventLog(cfg.bufferSize, cfg.bufferBytes),
		calls:    newCalls(),
		lim:      newLimits(cfg.maxInFlight, cfg.callerLimit),
		stopping: make(chan struct{}),
		recvDone: make(chan struct{}),
	}
	so := append(append([]client.Option(nil), sessionOpts...), client.WithOnState(a.onState))
	if a.s, err = client.New(so...); err != nil {
		return nil, err
	}
	a.srv = &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: cfg.headerTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       withPeer,
		ErrorLog:          nil,
	}
	return a, nil
}

// Session returns the agent's session.
func (a *Agent) Session() *client.Session { return a.s }

// start connects the session and starts receiving, once.
func (a *Agent) start() {
	a.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		a.recvStop = cancel
		go a.receive(ctx)
	})
}

// Serve serves local callers on l until Shutdown; it returns
// http.ErrServerClosed after Shutdown, like http.Server.Serve. Use
// [ListenUnix] or [ListenLoopback] for l.
func (a *Agent) Serve(l net.Listener) error {
	a.start()
	return a.srv.Serve(l)
}

// Shutdown stops the agent: it stops accepting calls, ends the event
// streams, waits for the calls in flight, closes the session (the server
// forgets it) and stops receiving. When ctx ends first, the requests still
// waiting for their replies fail with 503, retryable, the connections left
// are closed a moment later, and it returns the ctx error.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() { close(a.stopping) })
	err := a.srv.Shutdown(ctx)
	if err != nil {
		// The calls still waiting for a reply get a retryable 503 rather
		// than a dropped connection: a short grace for their answers.
		a.calls.closed(fmt.Errorf("%w: the agent is shutting down; retry with the next agent", errRetryable))
		grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		if a.srv.Shutdown(grace) != nil {
			_ = a.srv.Close()
		}
		cancel()
	}
	err = errors.Join(err, a.s.Close(ctx))
	select { // the session's last callbacks (onState) return before Shutdown does
	case <-a.s.Done():
	case <-ctx.Done():
	}
	a.startOnce.Do(func() { close(a.recvDone) }) // never started
	if a.recvStop != nil {
		a.recvStop()
	}
	select {
	case <-a.recvDone:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

// shutdownGrace is how long Shutdown lets the calls it failed answer
// their callers once its context has ended.
const shutdownGrace = time.Second

// receive routes every message the session receives: a reply to the call
// waiting for it, anything else to the event log.
func (a *Agent) receive(ctx context.Context) {
	defer close(a.recvDone)
	for {
		m, err := a.s.Receive(ctx)
		if err != nil {
			return
		}
		if a.isReply(m) && a.calls.deliver(m) {
			continue
		}
		if a.isReply(m) && a.calls.late(m.CorrelationID) {
			a.cfg.logger.Info("tether/agent: a late reply dropped: its call has ended", "correlation_id", m.CorrelationID)
			continue
		}
		a.events.add("message", NewMessage(m))
	}
}

// isReply reports whether m can be a reply to one of the agent's
// requests: a reply has a correlation id, is addressed to the session (no
// topic), and comes from another session. The server delivers a topic's
// messages to their sender too, so a request the agent sent to a topic it
// is subscribed to comes back to it, with the request's correlation id:
// that is an event, not the request's reply.
func (a *Agent) isReply(m *client.Message) bool {
	if m.CorrelationID == "" || m.Topic != "" {
		return false
	}
	return !a.isOwnSession(m.SourceSession)
}

// isOwnSession reports whether id is (or was) the agent's session.
func (a *Agent) isOwnSession(id string) bool {
	if id == "" {
		return false
	}
	a.mu.Lock()
	for _, s := range a.own {
		if s == id {
			a.mu.Unlock()
			return true
		}
	}
	a.mu.Unlock()
	return a.s.Stats().SessionID == id
}

// onState follows the session: a fresh session after the first means the
// old one is gone with the replies it would have received, so the calls
// it had delivered fail (retryable); a closed session fails every call.
func (a *Agent) onState(c client.StateChange) {
	switch c.State {
	case client.StateConnected:
		a.mu.Lock()
		a.last = c
		if c.SessionID != "" && (len(a.own) == 0 || a.own[len(a.own)-1] != c.SessionID) {
			if a.own = append(a.own, c.SessionID); len(a.own) > ownSessions {
				a.own = a.own[1:]
			}
		}
		fresh := !c.Resumed
		if fresh {
			a.sessions++
		}
		moved := fresh && a.sessions > 1
		a.mu.Unlock()
		if moved {
			a.calls.sessionLost(fmt.Errorf("%w: the agent's session moved to a fresh one on %s (%s) after this request was delivered, so its reply cannot arrive; the request may have been handled: retry it if that is safe",
				errRetryable, c.Backend, c.ResumeStatus))
		}
	case client.StateClosed:
		why := "closed"
		if c.Err != nil {
			why = c.Err.Error()
		}
		a.calls.closed(fmt.Errorf("the agent's session ended for good (%s): restart the agent", why))
	}
	a.events.add("state", newStateJSON(c))
	if f := a.cfg.onState; f != nil {
		f(c)
	}
}

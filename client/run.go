package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/backoff"
)

// closeGrace bounds how long Close waits for the server to confirm.
const closeGrace = 2 * time.Second

// run is the session's loop: every failure, whatever its kind, takes the
// same path: pick a healthy backend, open a stream, Hello with resume,
// replay, continue.
func (s *Session) run() {
	defer close(s.done)
	defer func() {
		if p := recover(); p != nil {
			s.cfg.logger.Error("tether: panic in the session loop", "panic", p, "stack", string(debug.Stack()))
			s.finish(fmt.Errorf("internal error: %v", p))
		}
	}()
	bo, _ := backoff.New(s.cfg.backoff, nil) // validated in New
	for {
		connectedAt, err := s.attempt()
		if s.isClosing() {
			s.finish(nil)
			return
		}
		var ga *GoAwayError
		if errors.As(err, &ga) && !ga.Reconnect() {
			s.finish(err)
			return
		}
		s.setState(StateChange{State: StateReconnecting, Err: err})
		if !connectedAt.IsZero() {
			bo.ResetIfStable(time.Since(connectedAt))
		}
		delay := bo.Next()
		if ga != nil {
			// The server asked for this pause; the drain or max-age timing
			// already spread the fleet, so no backoff on top.
			delay = ga.GoAway.GetRetryAfter().AsDuration()
			if j := ga.GoAway.GetRetryJitter().AsDuration(); j > 0 {
				delay += rand.N(j)
			}
		}
		if errors.Is(err, errReconnectAsked) || errors.Is(err, errKeepaliveRaised) {
			delay = 0
		}
		if !s.pause(delay) {
			s.finish(nil)
			return
		}
	}
}

// Reasons the session itself ended a stream.
var (
	errReconnectAsked  = errors.New("Reconnect called")
	errKeepaliveRaised = errors.New("the server's keepalive floor needs a slower transport keepalive: reconnecting with it")
	errClosing         = errors.New("session closing")
)

// pause waits d, or until Reconnect or Close. It reports false on Close.
func (s *Session) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.reconnect:
	case <-s.closing:
		return false
	}
	return true
}

func (s *Session) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// finish ends the session for good.
func (s *Session) finish(err error) {
	s.setState(StateChange{State: StateClosed, Err: err})
	s.out.close(s.errClosed())
}

// attempt runs one stream from dial to end. It returns when the stream
// was established (zero if never) and why it ended.
func (s *Session) attempt() (time.Time, error) {
	if err := s.backends.refresh(context.Background()); err != nil {
		return time.Time{}, err
	}
	b, err := s.backends.pick()
	if err != nil {
		return time.Time{}, err
	}
	c, w, err := s.open(b)
	if err != nil {
		b.set(func(b *backend) { b.avoidUntil = time.Now().Add(s.cfg.backoff.Cap) })
		return time.Time{}, err
	}
	connectedAt := time.Now()
	resumed := w.GetResumed()
	s.mu.Lock()
	s.sessionID, s.token = w.GetSessionId(), w.GetResumeToken()
	s.mu.Unlock()
	s.out.attach(c, resumed, w.GetLastReceivedSeq())
	s.in.attach(c, resumed, w.GetLost())
	c.start(w)
	s.setState(StateChange{State: StateConnected, Backend: c.backend, Resumed: resumed, ResumeStatus: w.GetResumeStatus(), Lost: w.GetLost()})
	if s.backends.raiseKeepalive(w.GetKeepaliveMinTime().AsDuration()) {
		c.end(errKeepaliveRaised)
	}
	c.signal() // re-send what is held
	go s.watch(c)
	c.write()
	s.out.detach(c)
	s.in.detach(c)
	<-c.done
	var ga *GoAwayError
	if errors.As(c.err, &ga) || errors.Is(c.err, errHeartbeat) {
		// Sent away, or the link went silent (its health watch may not
		// know yet): try the others first. A stream that merely broke is
		// not held against the backend, which still holds the session.
		b.set(func(b *backend) { b.avoidUntil = time.Now().Add(s.cfg.backoff.Cap) })
	}
	return connectedAt, c.err
}

// watch ends c on Reconnect or Close (Close says goodbye first).
func (s *Session) watch(c *conn) {
	select {
	case <-c.done:
	case <-s.reconnect:
		c.end(errReconnectAsked)
	case <-s.closing:
		c.pushCtrl(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "client closed the session"}}})
		t := time.NewTimer(closeGrace)
		select {
		case <-c.done:
		case <-t.C:
			c.end(errClosing)
		}
		t.Stop()
	}
}

// open dials b, sends Hello (resuming when there is a session) and waits
// for Welcome, all within the open timeout.
func (s *Session) open(b *backend) (*conn, *tetherv1.Welcome, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &conn{s: s, b: b, cancel: cancel, backend: b.addr, wake: make(chan struct{}, 1), done: make(chan struct{})}
	timer := time.AfterFunc(s.cfg.openTimeout, func() {
		cancel(fmt.Errorf("no welcome from %s within %v", b.addr, s.cfg.openTimeout))
	})
	defer timer.Stop()
	stop := context.AfterFunc(s.closeCtx, func() { cancel(errClosing) })
	defer stop()
	stream, err := b.client().Connect(ctx)
	if err != nil {
		cancel(err)
		return nil, nil, s.openErr(ctx, b, err)
	}
	c.stream = stream
	if err := stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: s.hello()}}); err != nil {
		_, err = stream.Recv() // the real error
		cancel(err)
		return nil, nil, s.openErr(ctx, b, err)
	}
	f, err := stream.Recv()
	if err != nil {
		cancel(err)
		return nil, nil, s.openErr(ctx, b, err)
	}
	w := f.GetWelcome()
	if w == nil {
		err := status.Errorf(codes.Internal, "%s sent %T before welcome", b.addr, f.GetFrame())
		cancel(err)
		return nil, nil, err
	}
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil && s.cfg.target != "" {
		c.backend = p.Addr.String() // the address gRPC's balancer chose
	}
	return c, w, nil
}

func (s *Session) openErr(ctx context.Context, b *backend, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return fmt.Errorf("opening a stream to %s: %w", b.addr, err)
}

// hello builds the Hello for the next stream.
func (s *Session) hello() *tetherv1.Hello {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &tetherv1.Hello{
		ClientId: s.cfg.clientID,
		Topics:   slices.Sorted(maps.Keys(s.topics)),
		Metadata: s.cfg.metadata,
	}
	iv := s.cfg.heartbeat
	if iv == 0 {
		iv = s.cfg.profile.Heartbeat.Interval
	}
	h.HeartbeatInterval = durationpb.New(iv)
	if s.sessionID != "" {
		h.Resume = &tetherv1.Resume{SessionId: s.sessionID, ResumeToken: s.token, LastReceivedSeq: s.in.lastReceived()}
	}
	return h
}

// noteRTT records a round-trip time measured on c.
func (s *Session) noteRTT(c *conn, rtt time.Duration) {
	c.b.set(func(b *backend) { b.rtt = rtt })
	s.mu.Lock()
	s.stats.RTT = rtt
	s.mu.Unlock()
	s.metrics.rtt.Observe(rtt.Seconds())
	if f := s.cfg.onRTT; f != nil {
		backend := c.backend
		s.events.push(func() { f(backend, rtt) })
	}
}

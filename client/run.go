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

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/backoff"
)

// closeGrace bounds how long Close waits for queued messages to be acked
// and for the server to confirm the goodbye.
const closeGrace = 5 * time.Second

// run is the session's loop: every failure, whatever its kind, takes the
// same path: pick a healthy backend, open a stream, Hello with resume,
// replay, continue.
func (s *Session) run() {
	// Queued behind every callback the session pushed: Done closes after
	// the last one returned.
	defer s.events.push(func() { close(s.quiet) })
	defer close(s.done)
	defer func() {
		if p := recover(); p != nil {
			s.cfg.logger.Error("tether: panic in the session loop", "panic", p, "stack", string(debug.Stack()))
			s.finish(fmt.Errorf("tether/client: internal error: %v", p))
		}
	}()
	defer s.backends.close()
	bo, _ := backoff.New(s.cfg.backoff, nil) // validated in New
	for {
		if !s.holdWhileSuspended() {
			s.finish(nil)
			return
		}
		gen, _ := s.backends.turnedServing()
		established, healthy, err := s.attempt()
		if s.isClosing() {
			s.finish(nil)
			return
		}
		if s.isSuspended() {
			continue // no backoff: Resume reconnects at once
		}
		if permanent(err) {
			s.finish(err)
			return
		}
		s.setState(StateChange{State: StateReconnecting, Err: err, Backend: s.lastBackend()})
		if established {
			bo.ResetIfStable(healthy)
			// What turned SERVING while the stream lived is no news to
			// the wait that follows it; while a failed open ran, it is.
			gen, _ = s.backends.turnedServing()
		}
		d := s.delay(bo, err)
		if !established && s.backends.servingUntried() {
			// The attempt failed where the session lived (or on a backend
			// that turned bad) while another is SERVING: go there now.
			// Each backend is tried so once per backoff Cap (a failed one
			// is avoided that long), then the backoff applies.
			d = min(d, s.servingJitter())
		}
		if !s.pause(d, gen) {
			s.finish(nil)
			return
		}
	}
}

// delay is how long to wait before the next attempt.
func (s *Session) delay(bo *backoff.Backoff, err error) time.Duration {
	var ga *GoAwayError
	switch {
	case errors.Is(err, errReconnectAsked), errors.Is(err, errKeepaliveRaised), errors.Is(err, errServerClosed):
		return 0 // asked for, or a clean close: at once (to another backend)
	case errors.As(err, &ga):
		d := ga.RetryAfter
		if ga.RetryJitter > 0 {
			d += rand.N(ga.RetryJitter)
		}
		switch ga.Reason {
		case GoAwayDrain, GoAwayMaxAge:
			return d // the server's pacing already spread the fleet
		}
		return max(d, bo.Next()) // overload or a slow reader: back off too
	}
	return bo.Next()
}

// Reasons the session itself ended a stream.
var (
	errServerClosed    = errors.New("the server ended the stream")
	errReconnectAsked  = errors.New("tether/client: Reconnect called")
	errKeepaliveRaised = errors.New("tether/client: the server's keepalive floor needs a slower transport keepalive than this stream's heartbeat keeps busy: reconnecting with it")
	errClosing         = errors.New("tether/client: session closing")
)

// maxServingJitter bounds the wait after a backend turns SERVING: a
// fleet that saw it at once spreads over half a second.
const maxServingJitter = 500 * time.Millisecond

// pause waits d, or until Reconnect or Close. It reports false on Close.
// When a backend turns SERVING during the wait, or did since gen (while
// the last attempt ran), the wait is cut short to a random time below
// the backoff's Base and maxServingJitter: the backend is ready now, and
// the jitter spreads a fleet that all saw it at once.
func (s *Session) pause(d time.Duration, gen uint64) bool {
	deadline := time.Now().Add(d)
	t := time.NewTimer(d)
	defer t.Stop()
	now, served := s.backends.turnedServing()
	if now != gen {
		served = closedChan
	}
	for {
		select {
		case <-t.C:
			return true
		case <-s.reconnect:
			return true
		case <-s.susp.wake: // Suspend, or Resume
			return true
		case <-s.closing:
			return false
		case <-served:
			served = nil
			if j := s.servingJitter(); time.Until(deadline) > j {
				t.Reset(j)
			}
		}
	}
}

// servingJitter is a random wait below the backoff's Base and
// maxServingJitter.
func (s *Session) servingJitter() time.Duration {
	return rand.N(min(s.cfg.backoff.Base, maxServingJitter))
}

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

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

// attempt runs one stream from dial to end. It returns whether a stream
// was established, how long it worked (see conn.healthyFor) and why it
// ended.
func (s *Session) attempt() (established bool, healthy time.Duration, err error) {
	if err := s.backends.refresh(s.closeCtx); err != nil {
		return false, 0, err
	}
	s.mu.Lock()
	home, sticky := s.home, !s.anywhere
	s.mu.Unlock()
	b, err := s.backends.pick(home, sticky)
	if err != nil {
		return false, 0, err
	}
	s.mu.Lock()
	s.tried = b.addr
	s.mu.Unlock()
	c, w, err := s.open(b)
	if err != nil {
		b.set(func(b *backend) { b.avoidUntil = time.Now().Add(s.cfg.backoff.Cap) })
		return false, 0, err
	}
	connectedAt := time.Now()
	// What the server offers is known before anyone sees the stream: a
	// Suspend right after Connect returns must find Suspend offered.
	c.pulse.init(w)
	s.welcomed(b, c, w)
	c.start()
	if interval, _ := c.pulse.get(); s.backends.raiseKeepalive(w.GetKeepaliveMinTime().AsDuration(), interval, b) {
		c.end(errKeepaliveRaised)
	}
	c.signal() // re-send what is held
	go s.watch(c)
	if s.isSuspended() { // Suspend came while the stream opened
		s.suspendConn(c)
	}
	c.write()
	s.out.detach(c)
	s.in.detach(c)
	<-c.done
	<-c.readDone // no frame of this stream is handled after this
	s.adaptLost(c, c.err)
	var ga *GoAwayError
	if errors.As(c.err, &ga) || errors.Is(c.err, errHeartbeat) {
		// Sent away, or the link went silent (its health watch may not
		// know yet): try the others first. A stream that merely broke is
		// not held against the backend, which still holds the session.
		b.set(func(b *backend) { b.avoidUntil = time.Now().Add(s.cfg.backoff.Cap) })
	}
	switch {
	case errors.Is(c.err, errHeartbeat) || ga != nil && ga.Reason == GoAwayHeartbeatTimeout:
		// Its connection is as dead as the stream (in one direction, when
		// the server heard nothing): dial afresh.
		s.backends.reset(b)
	case ga != nil && ga.Reason == GoAwayMaxAge:
		s.backends.renew(b) // the connection is old: the next stream goes on a new one
	}
	return true, c.healthyFor(connectedAt), c.err
}

// welcomed takes in w, the Welcome of c on b: the session's id, token,
// home and limits, its queues on c, and the connected state.
func (s *Session) welcomed(b *backend, c *conn, w *tetherv1.Welcome) {
	c.n = s.streams.Add(1)
	resumed := w.GetResumed()
	s.mu.Lock()
	prevID := s.sessionID
	s.home, s.anywhere = b, w.GetResumeAnywhere()
	s.sessionID, s.token = w.GetSessionId(), w.GetResumeToken()
	s.mu.Unlock()
	s.limits.Store(w.GetLimits())
	s.out.attach(c, resumed, w.GetLastReceivedSeq(), func(m *tetherv1.ClientMessage) error { return tooLarge(w.GetLimits(), m) })
	if !resumed {
		c.ackSent, c.ackBytes = 0, 0 // the fresh session numbers from 1: nothing of it is acked
	}
	c.window(w, s.receiveWindow())
	s.adaptWelcomed(w)
	// The old session's messages this one did not inherit, less those
	// received, when it was this Session's own.
	dropped, droppedOK := unreceived(w.GetTookOver().GetDropped(), 0)
	if w.GetTookOver().GetSessionId() == prevID {
		dropped, droppedOK = unreceived(w.GetTookOver().GetDropped(), s.in.receivedSeq())
	}
	lost, lostOK := s.in.attach(c, resumed, w.GetLost())
	s.syncTopics(c, w)
	// Connected before the stream's reader starts, so that a message of
	// the new stream is never seen while the state still says otherwise.
	s.setState(StateChange{State: StateConnected, Backend: c.backend, ServerID: w.GetServerId(), Heartbeat: w.GetHeartbeatInterval().AsDuration(),
		Resumed: resumed, ResumeStatus: ResumeStatus(w.GetResumeStatus()), Lost: newSeqRange(w.GetLost()), TookOver: newTakeOver(w.GetTookOver())})
	if lostOK {
		s.reportLoss(Loss{Cause: LossResume, Range: lost, SessionID: w.GetSessionId()})
	}
	if droppedOK {
		s.reportLoss(Loss{Cause: LossTakeOver, Range: dropped, SessionID: w.GetTookOver().GetSessionId()})
	}
}

// watch ends c on Reconnect or Close (Close says goodbye first).
func (s *Session) watch(c *conn) {
	for {
		select {
		case <-c.done:
			return
		case n := <-s.reconnect:
			if n < c.n {
				continue // asked for before c existed: it is new already
			}
			c.end(errReconnectAsked)
			return
		case <-s.closing:
			s.goodbye(c)
			return
		}
	}
}

// goodbye flushes what Send accepted, within the grace, then closes the
// session on c.
func (s *Session) goodbye(c *conn) {
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	if !s.out.waitEmpty(c.done, t.C) {
		c.end(errClosing)
		return
	}
	c.pushCtrl(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "client closed the session"}}})
	select {
	case <-c.done:
	case <-t.C:
		c.end(errClosing)
	}
}

// syncTopics makes the server's subscriptions match the session's after a
// resume: a Subscribe or Unsubscribe made while no stream carried the
// session is sent now (Hello's topics only count for a fresh session).
func (s *Session) syncTopics(c *conn, w *tetherv1.Welcome) {
	if !w.GetResumed() {
		return
	}
	s.mu.Lock()
	want := maps.Clone(s.topics)
	s.mu.Unlock()
	var drop []string
	for _, t := range w.GetTopics() {
		if _, ok := want[t]; ok {
			delete(want, t)
		} else {
			drop = append(drop, t)
		}
	}
	if len(want) > 0 {
		c.pushCtrl(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: slices.Sorted(maps.Keys(want))}}})
	}
	if len(drop) > 0 {
		c.pushCtrl(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Unsubscribe{Unsubscribe: &tetherv1.Unsubscribe{Topics: drop}}})
	}
}

// open dials b, sends Hello (resuming when there is a session) and waits
// for Welcome, all within the open timeout.
func (s *Session) open(b *backend) (*conn, *tetherv1.Welcome, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &conn{s: s, b: b, ctx: ctx, cancel: cancel, backend: b.addr, wake: make(chan struct{}, 1), done: make(chan struct{}), readDone: make(chan struct{})}
	timer := time.AfterFunc(s.cfg.openTimeout, func() {
		cancel(fmt.Errorf("tether/client: no welcome from %s within %v", b.addr, s.cfg.openTimeout))
	})
	defer timer.Stop()
	stop := context.AfterFunc(s.closeCtx, func() { cancel(errClosing) })
	defer stop()
	fail := func(err error) (*conn, *tetherv1.Welcome, error) {
		err = s.openErr(ctx, b, err)
		cancel(err)
		return nil, nil, err
	}
	stream, err := b.client().Connect(ctx, grpc.ForceCodecV2(streamCodec))
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			// No connection to carry the stream. gRPC would retry it on
			// its own backoff (1s, growing) and fail every stream at once
			// meanwhile, hiding a server that is back; drop it, so that
			// the session's backoff alone paces the next try, which
			// dials afresh.
			s.backends.reset(b)
		}
		return fail(err)
	}
	c.stream = stream
	if err := stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: s.hello(c)}}); err != nil {
		_, err = stream.Recv() // the real error
		return fail(err)
	}
	f, err := stream.Recv()
	if err != nil {
		return fail(err)
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

// openErr explains a failed open: the open timeout or Close when one of
// them cut it short, else the error, with the backend it came from.
func (s *Session) openErr(ctx context.Context, b *backend, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if _, ok := status.FromError(err); ok {
		return streamError(b.addr, err, nil, false)
	}
	return fmt.Errorf("tether/client: opening a stream to %s: %w", b.addr, err)
}

// hello builds the Hello for the next stream, c: a resume acks, as of
// it, what the application took.
func (s *Session) hello(c *conn) *tetherv1.Hello {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &tetherv1.Hello{
		ClientId:      s.cfg.clientID,
		Topics:        slices.Sorted(maps.Keys(s.topics)),
		Metadata:      s.cfg.metadata,
		ReceiveWindow: s.receiveWindow(),
		MaxBatch:      uint32(s.cfg.maxBatch),
	}
	iv := s.cfg.heartbeat
	if iv == 0 {
		iv = s.cfg.profile.Heartbeat.Interval
	}
	if s.adapt != nil {
		iv = s.adapt.interval() // what it learned, or iv
	}
	h.HeartbeatInterval = durationpb.New(iv)
	if s.sessionID != "" {
		// What the application took, not all that arrived: the server
		// treats it as an ack, and an unread message must keep counting
		// against its outbound queue. Replayed duplicates are dropped.
		c.ackSent, c.ackBytes = s.in.ackable()
		h.Resume = &tetherv1.Resume{SessionId: s.sessionID, ResumeToken: s.token, LastReceivedSeq: c.ackSent}
	}
	return h
}

// receiveWindow is the window the session asks for (WithReceiveWindow).
func (s *Session) receiveWindow() *tetherv1.ReceiveWindow {
	return &tetherv1.ReceiveWindow{Messages: uint32(s.cfg.windowMessages), Bytes: uint32(s.cfg.windowBytes)}
}

// noteRTT records a round-trip time measured on c.
func (s *Session) noteRTT(c *conn, rtt time.Duration) {
	if idle, ok := c.pulse.ponged(rtt); ok && s.adapt != nil && c.pulse.offers().GetSetHeartbeat() {
		s.adapt.beat(c, idle)
	}
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

// lastBackend is the backend of the latest attempt.
func (s *Session) lastBackend() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tried
}

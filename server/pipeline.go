package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// With a broker that implements [broker.Pipeliner] (NATS), unless
// WithPipelining turns it off, a session's
// messages to one session or client id that the Handler routes as Router
// does (Router itself, or a PassThrough's pass-through messages) are
// routed without the reader waiting for each: the reader hands message seq
// to the session's broker.Pipeline and reads the next, and the message is
// handled, failed or refused (see inbound.go) when the pipeline reports its
// fate, in seq order. So a message routed to another node, or whose log
// append JetStream must store, costs its sender no round trip of its own.
//
// The reader waits for the pipeline to empty before a message that is not
// the next to the same target on the same stream (another target, a
// reply, a topic, one the Handler sees): those are handled as before, one
// at a time. When the pipeline refuses message seq (a retryable failure),
// the client is told at once and re-sends from seq; the messages behind it
// are not acknowledged: the broker chains them so that none arrives ahead
// of seq (broker.Pipeline). One that arrived all the same (behind a message
// whose fate was unknown: its holder answered too late) is remembered, and
// its re-send acknowledged without being delivered again (inflight.ahead).
// The reader applies the refusal once the pipeline is empty. A drain and a
// resume on another stream wait for the pipeline first, as they wait for
// keys on their way (marks.go).

// maxPipelined bounds the messages a session has in its pipeline; the
// reader waits for the oldest beyond it.
const maxPipelined = 1024

// inflight is a session's messages in its broker pipeline.
type inflight struct {
	mu     sync.Mutex
	p      broker.Pipeline // made on first use
	st     *stream         // the stream whose reader sent them
	target broker.Address
	n      int    // in flight
	last   uint64 // seq of the latest sent
	// refused is the seq of a message the pipeline refused, for the
	// reader to apply once the pipeline is empty (see awaitPipeline).
	refused uint64
	// ahead holds the seqs of messages behind a refused one that were
	// delivered all the same (the refused one's fate was unknown: its
	// holder answered too late, say): their re-sends are dropped as
	// duplicates (see takeAhead), not delivered again.
	ahead map[uint64]bool
	idle  chan struct{} // closed when n drops, for whoever waits; made on demand
	// ctx is the context of the pipeline's messages, made with p: it ends
	// when the session leaves this node (stop, from departLocked), so
	// that none of them is parked after that (see broker.Pipeline).
	ctx  context.Context
	stop context.CancelFunc
}

// pipeline returns the session's pipeline state, made on first use: a
// session that never pipelines a message (every session on a broker
// without pipelining, and every idle one) holds none.
func (s *Session) pipeline() *inflight {
	if f := s.pipe.Load(); f != nil {
		return f
	}
	s.pipe.CompareAndSwap(nil, &inflight{})
	return s.pipe.Load()
}

// pipeliner returns the broker's pipelining when msg may go through the
// pipeline, or nil.
func (st *stream) pipeliner(msg *Message) broker.Pipeliner {
	srv := st.srv
	if msg.Target.Kind != broker.KindSession && msg.Target.Kind != broker.KindClient {
		return nil
	}
	pl, ok := srv.broker.(broker.Pipeliner)
	if !ok || !srv.cfg.pipelining || st.sess.inStale.Load() || srv.brokerDown.Load() {
		return nil
	}
	switch h := srv.cfg.handler.(type) {
	case Router:
	case PassThrough:
		if !h.PassesToRouter(st.sess, msg) {
			return nil
		}
	default:
		return nil
	}
	return pl
}

// follows reports whether a message to target numbered seq by the client
// follows the pipeline's messages: it may join them without waiting. While
// the pipeline is full it waits for room; it reports false if the stream
// ends meanwhile.
func (st *stream) follows(target broker.Address, seq uint64) bool {
	f := st.sess.pipe.Load()
	if f == nil {
		return true
	}
	for {
		f.mu.Lock()
		if f.n == 0 && f.refused == 0 {
			f.mu.Unlock()
			return true
		}
		if f.st != st || f.refused != 0 || f.target != target || seq != 0 && seq != f.last+1 {
			f.mu.Unlock()
			return false
		}
		if f.n < maxPipelined {
			f.mu.Unlock()
			return true
		}
		if !f.waitLocked(st.done) {
			return false
		}
	}
}

// pipeTop is the seq of the last message the stream's reader sent through
// the pipeline while it still counts: some are in flight, or a refusal is
// yet to be applied (0 otherwise: the session's inSeq covers them).
func (st *stream) pipeTop() uint64 {
	f := st.sess.pipe.Load()
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st == st && (f.n > 0 || f.refused != 0) {
		return f.last
	}
	return 0
}

// turn waits for the messages ahead of seq in the pipeline, so that seq
// can be handled at once. It reports false when seq is to be dropped: the
// stream ended, or a message ahead of it was refused.
func (st *stream) turn(seq uint64) bool {
	if !st.awaitPipeline() {
		return false
	}
	return st.refused == 0 || st.refused >= seq
}

// pipelinable reports whether message seq (m, to be delivered as msg)
// goes through the pipeline: nothing would end it at once.
func (st *stream) pipelinable(ctx context.Context, m *tetherv1.ClientMessage, msg *Message, d idempotency) bool {
	return (d.key == "" || d.skip) && st.srv.validMessage(m) == nil && validAddress(msg.Target) == nil &&
		st.srv.cfg.authz.Publish(ctx, msg.Target) == nil
}

// awaitPipeline waits until the session's pipeline is empty, then applies
// a refusal it reported to the stream's reader state. It reports false
// when the stream ended while it waited.
func (st *stream) awaitPipeline() bool {
	f := st.sess.pipe.Load()
	if f == nil {
		return true
	}
	for {
		f.mu.Lock()
		if f.n == 0 {
			if f.refused != 0 && f.st == st {
				st.refused = f.refused
			}
			f.refused = 0
			f.mu.Unlock()
			return true
		}
		if !f.waitLocked(st.done) {
			return false
		}
	}
}

// waitLocked unlocks f and waits until the pipeline shrinks; it reports
// false if stop closed first.
func (f *inflight) waitLocked(stop <-chan struct{}) bool {
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-stop:
		return false
	}
}

// awaitPipeline waits, at most wait, for the session's pipeline to empty:
// a drain acknowledges, and records the keys of, what it handled.
func (s *Session) awaitPipeline(wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s.awaitPipelineUntil(ctx.Done())
}

// awaitPipelineUntil waits until the session's pipeline is empty or stop
// closes.
func (s *Session) awaitPipelineUntil(stop <-chan struct{}) {
	f := s.pipe.Load()
	if f == nil {
		return
	}
	for {
		f.mu.Lock()
		if f.n == 0 {
			f.mu.Unlock()
			return
		}
		if !f.waitLocked(stop) {
			return
		}
	}
}

// routeAsync routes msg, message seq of the stream, through the session's
// pipeline (see pipeliner) and returns at once; routed ends it.
func (st *stream) routeAsync(ctx context.Context, pl broker.Pipeliner, d idempotency, msg *Message) {
	st.srv.metrics.pipelined.Inc()
	s := st.sess
	bm := &broker.Message{
		Target:        msg.Target,
		Payload:       msg.Payload,
		ContentType:   msg.ContentType,
		Headers:       msg.Headers,
		CorrelationID: msg.CorrelationID,
		SourceSession: s.id,
		SourceClient:  s.clientID,
		DedupeKey:     dedupeKey(s.dedupeScope(), msg.IdempotencyKey),
		PublishedAt:   time.Now(),
	}
	seq := msg.Seq
	f := s.pipeline()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refused != 0 {
		return // behind a refused message: the client re-sends it
	}
	if f.p == nil {
		f.p = pl.Pipeline()
		f.ctx, f.stop = context.WithCancel(context.WithoutCancel(ctx))
	}
	st.refused = 0 // seq is the re-send of a refused message, if any
	f.st, f.target, f.last = st, msg.Target, seq
	f.n++
	// Under f.mu: a refusal reported meanwhile (routed) is seen above,
	// and the broker fences this message behind the refused one.
	f.p.Publish(f.ctx, bm, func(n int, err error) { st.routed(ctx, d, bm, seq, n, err) })
}

// routed ends message seq, routed as m through the pipeline, as the
// Router's OnMessage would have ended with the broker's n and err.
func (st *stream) routed(ctx context.Context, d idempotency, m *broker.Message, seq uint64, n int, err error) {
	s := st.sess
	switch {
	case errors.Is(err, broker.ErrFull):
		err = st.srv.errFull(m.Target)
	case err != nil:
		err = routeError(err)
	case n == 0:
		err = status.Errorf(codes.NotFound, "no session for %s %q: it is unknown or has ended; direct messages are not stored for absent sessions", m.Target.Kind, truncate(m.Target.Name))
	}
	f := s.pipe.Load() // made by routeAsync
	f.mu.Lock()
	dropped := f.refused != 0
	if !dropped && err != nil && retryable(err) {
		f.refused = seq
	}
	f.mu.Unlock()
	defer st.sess.pipeDone()
	switch {
	case dropped && err == nil:
		// Behind a refused message, and delivered: the client re-sends
		// it, and its re-send is a duplicate, here and (by its key) on
		// a node the session moves to.
		st.settleKey(ctx, d, seq, true)
		f.mu.Lock()
		if f.ahead == nil {
			f.ahead = make(map[uint64]bool)
		}
		f.ahead[seq] = true
		f.mu.Unlock()
	case dropped:
		// Behind a refused message: the client re-sends it.
	case err != nil && retryable(err):
		st.srv.metrics.notHandled.WithLabelValues("refused").Inc()
		st.tellRefused(seq, err)
	case err != nil:
		st.srv.metrics.notHandled.WithLabelValues("failed").Inc()
		st.sendError(err, seq)
		st.settledAsync(seq)
	default:
		st.settleKey(ctx, d, seq, true)
		st.settledAsync(seq)
	}
}

// deliveredAhead reports whether message seq was delivered behind a refused
// one (see inflight.ahead).
func (s *Session) deliveredAhead(seq uint64) bool {
	f := s.pipe.Load()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ahead[seq]
}

// forgetAhead forgets the messages delivered ahead up to seq.
func (s *Session) forgetAhead(seq uint64) {
	f := s.pipe.Load()
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for a := range f.ahead {
		if a <= seq {
			delete(f.ahead, a)
		}
	}
}

// stopPipeline tells the session's pipeline that the session left this
// node: a message still on its way is not parked for its target once it
// finds no holder (the client re-sends it where the session went, and the
// parked copy would arrive too).
func (s *Session) stopPipeline() {
	f := s.pipe.Load()
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil {
		f.stop()
	}
}

// pipeDone counts one message of the pipeline ended.
func (s *Session) pipeDone() {
	f := s.pipe.Load() // made by routeAsync
	f.mu.Lock()
	f.n--
	if f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// settledAsync marks message seq, which the pipeline ended, handled or
// failed: received, to be acked.
func (st *stream) settledAsync(seq uint64) {
	st.sess.inSeq.Store(seq)
	if !st.finished.Load() {
		st.noteReceived(seq)
	}
}

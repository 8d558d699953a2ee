package server

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/broker"
)

// With a shared broker that implements [broker.Recorder], the key (or the
// receive mark) of each client message handled is recorded without the
// reader waiting for it: the reader goes on to the next message while up
// to maxMarksInFlight keys are on their way, and the Ack that covers a
// message is sent only once its key is stored (or failed to be, which is
// logged, as a synchronous record's failure is). So everything a client
// sees acknowledged is recorded, and a node the session moves to finds the
// key of any message the client re-sends and the previous node handled,
// as with a record awaited before the next message.

// maxMarksInFlight bounds the keys one stream has on their way to the
// broker; the reader waits for the oldest beyond it.
const maxMarksInFlight = 1024

// marks are a stream's keys on their way to the broker, in seq order.
type marks struct {
	mu      sync.Mutex
	pending []pendingMark
	space   chan struct{} // signalled when pending shrinks; made on first use
	// held is the seq of the oldest mark not yet stored, 0 when none: no
	// Ack may cover it (see ackCap).
	held atomic.Uint64
}

// pendingMark is one key on its way: the message's seq, and whether its
// record has ended.
type pendingMark struct {
	seq  uint64
	done bool
}

// recordAsync records d's key for message seq through rec and returns at
// once; the message is acknowledged when the record ends (markDone). When
// maxMarksInFlight keys are on their way, it first waits for the oldest
// (or the stream's end).
func (st *stream) recordAsync(rec broker.Recorder, d idempotency, seq uint64) {
	m := &st.marks
	m.mu.Lock()
	for len(m.pending) >= maxMarksInFlight {
		space := m.spaceLocked()
		m.mu.Unlock()
		select {
		case <-space:
		case <-st.done:
		}
		m.mu.Lock()
		if st.finished.Load() {
			break
		}
	}
	if len(m.pending) == 0 {
		m.held.Store(seq)
	}
	m.pending = append(m.pending, pendingMark{seq: seq})
	m.mu.Unlock()
	rec.Record(d.scope, d.key, d.window, func(err error) { st.markDone(seq, err) })
}

// spaceLocked returns the channel signalled when pending shrinks.
func (m *marks) spaceLocked() chan struct{} {
	if m.space == nil {
		m.space = make(chan struct{}, 1)
	}
	return m.space
}

// markDone ends the record of message seq's key (err nil: stored) and acks
// what the stored marks now allow.
func (st *stream) markDone(seq uint64, err error) {
	if err != nil {
		st.srv.cfg.logger.Warn("tether: recording a handled message's idempotency key failed; a re-send of it may be handled twice",
			"session", st.sess.id, "seq", seq, "err", err)
	}
	m := &st.marks
	m.mu.Lock()
	for i := range m.pending {
		if m.pending[i].seq == seq {
			m.pending[i].done = true
			break
		}
	}
	n := 0
	for n < len(m.pending) && m.pending[n].done {
		n++
	}
	if n == 0 {
		m.mu.Unlock()
		return
	}
	m.pending = append(m.pending[:0], m.pending[n:]...)
	if len(m.pending) > 0 {
		m.held.Store(m.pending[0].seq)
	} else {
		m.held.Store(0)
	}
	select {
	case m.spaceLocked() <- struct{}{}:
	default:
	}
	m.mu.Unlock()
	if !st.finished.Load() {
		st.noteReceived(st.sess.receivedSeq())
	}
}

// ackCap is the highest client seq an Ack may cover: below the oldest mark
// not yet stored.
func (st *stream) ackCap() uint64 {
	if h := st.marks.held.Load(); h != 0 {
		return h - 1
	}
	return math.MaxUint64
}

// awaitMarks waits, at most wait, until the keys on their way are stored
// (or the stream ends): a stream about to send its final Ack (a drain)
// acknowledges everything it handled.
func (st *stream) awaitMarks(wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	m := &st.marks
	for {
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.mu.Unlock()
			return
		}
		space := m.spaceLocked()
		m.mu.Unlock()
		select {
		case <-space:
		case <-st.done:
			return
		case <-t.C:
			return
		}
	}
}

// awaitMarks waits for the keys its stream, if any, has on their way (see
// stream.awaitMarks), for at most the broker's usual bound.
func (s *Session) awaitMarks() {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	if st != nil {
		st.awaitMarks(marksWait)
	}
}

// marksWait bounds how long a drain waits for keys on their way.
const marksWait = 5 * time.Second

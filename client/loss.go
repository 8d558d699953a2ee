package client

import (
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// LossCause says how server messages came to be lost on their way to the
// session.
type LossCause int

// The causes of a [Loss].
const (
	// LossGap: the session's outbound log on the server was full and its
	// oldest messages were dropped while a stream carried the session
	// (the DROP_OLDEST overflow policy, or a topic message under
	// BACKPRESSURE): the server said so at once, in a Gap frame.
	LossGap LossCause = iota + 1
	// LossResume: the log overflowed while the session was away; its
	// resume said so (Welcome.lost, [ResumeResumedWithGap]).
	LossResume
	// LossTakeOver: this fresh session took its client id over from an
	// earlier session whose undelivered messages were not all inherited
	// (Welcome.took_over.dropped); Range counts in that session's seqs.
	LossTakeOver
)

// String returns "gap", "resume" or "take_over".
func (c LossCause) String() string {
	switch c {
	case LossGap:
		return "gap"
	case LossResume:
		return "resume"
	case LossTakeOver:
		return "take_over"
	}
	return "unknown"
}

// Loss is a range of server messages that will never reach the
// application. Only the seqs the session had not received count: a seq
// of the server's range that arrived before the server dropped it is
// delivered by Receive as usual.
type Loss struct {
	Cause LossCause
	// Range is the seqs lost, in the seqs of the session SessionID.
	Range SeqRange
	// SessionID is the session whose seqs Range counts: the session's
	// own, or for LossTakeOver the session taken over.
	SessionID string
	// Reason is the server's explanation (Gap.reason), for logs.
	Reason string
	// Time is when the session learned it.
	Time time.Time
}

// TakeOver is what a fresh session inherited from the earlier session of
// its client id that it took over (tether.v1.TakeOver): that session's
// undelivered messages come first on the new one, in their order. It is
// set in the [StateChange] of StateConnected.
type TakeOver struct {
	// SessionID is the id of the session taken over.
	SessionID string
	// Inherited is how many of its messages this session received from it.
	Inherited uint64
	// Dropped is the range of its messages (in its seqs) that were not
	// inherited and will never arrive, or nil; a [Loss] with
	// LossTakeOver reports those the session had not received.
	Dropped *SeqRange
}

func newTakeOver(t *tetherv1.TakeOver) *TakeOver {
	if t == nil {
		return nil
	}
	return &TakeOver{SessionID: t.GetSessionId(), Inherited: t.GetInherited(), Dropped: newSeqRange(t.GetDropped())}
}

// WithOnLoss calls f at once for every range of server messages that the
// session will never deliver: those a Gap frame reported while the stream
// was up, those a resume reported lost (Welcome.lost), and those of a
// session taken over that were not inherited (see [Loss]). f runs on the
// goroutine of WithOnState's callback, in order with it, outside every
// lock. With f or without, the tether_client_messages_lost_total metric
// counts the seqs, by cause, and the logger (WithLogger) records each
// loss at Warn. The StateChange of StateConnected also carries the
// server's own ranges (Lost, TookOver).
func WithOnLoss(f func(Loss)) Option {
	return optionFunc(func(c *config) error { c.onLoss = f; return nil })
}

// unreceived is the part of the server's lost range r that lies above
// received, the highest seq the session received; ok is false when
// nothing of it does.
func unreceived(r *tetherv1.SeqRange, received uint64) (SeqRange, bool) {
	if r == nil || r.GetLast() <= received || r.GetLast() < r.GetFirst() {
		return SeqRange{}, false
	}
	return SeqRange{First: max(r.GetFirst(), received+1), Last: r.GetLast()}, true
}

// reportLoss tells the application, the metric and the log about l.
func (s *Session) reportLoss(l Loss) {
	l.Time = time.Now()
	s.metrics.lost.WithLabelValues(l.Cause.String()).Add(float64(l.Range.Last - l.Range.First + 1))
	s.cfg.logger.Warn("tether: server messages lost", "cause", l.Cause.String(), "session", l.SessionID,
		"first", l.Range.First, "last", l.Range.Last, "reason", l.Reason)
	if f := s.cfg.onLoss; f != nil {
		s.events.push(func() { f(l) })
	}
}

// gap handles the server's Gap frame on c: the range counts as received,
// what of it had not arrived is reported lost, and the ack it allows is
// scheduled.
func (s *Session) gap(c *conn, g *tetherv1.Gap) {
	if r, ok := s.in.gap(g.GetLost()); ok {
		s.mu.Lock()
		id := s.sessionID
		s.mu.Unlock()
		s.reportLoss(Loss{Cause: LossGap, Range: r, SessionID: id, Reason: g.GetReason()})
	}
	c.noteAckable()
}

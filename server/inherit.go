package server

import (
	"context"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file is the inheritance of a client id's messages: a fresh session
// that takes over its client id (Hello.client_id without a valid resume)
// from a session of the same principal on this node takes that session's
// undelivered messages (sent and unacknowledged, or queued) as its own
// first messages, in their order, before anything newer; Welcome.took_over
// says how many, and which were not inherited (dropped).
//
// The order holds because the heir is not yet on the server while it
// inherits (nothing is routed to it), and from the moment a session has an
// heir, whatever is still routed to it (a delivery that looked it up
// before) goes to the heir, once the heir has inherited (see forward).
//
// With a shared broker, a session of the client id on this node is
// inherited from the same way (a node gets no eviction of its own); one on
// another node ends at its holder, which keeps its log for the heir, and
// the heir inherits from the log and the record (see inheritAway).

// inherit makes s, a fresh session not yet on the server, the heir of the
// sessions of its client id on this node, when they all belong to its
// principal (otherwise indexFresh refuses s). It returns what Welcome
// reports, nil when there was no session to take over.
//
// resume is the Hello's failed resume, if any: when it names a session
// taken over, its client already holds that session's messages up to
// resume.last_received_seq (the SDK delivers them still), so they are
// neither inherited (they would arrive twice) nor reported dropped.
func (srv *Server) inherit(ctx context.Context, s *Session, resume *tetherv1.Resume) *tetherv1.TakeOver {
	if s.clientID == "" || !srv.cfg.oneSessionPerID {
		return nil
	}
	srv.mu.RLock()
	old := collect(srv.byClient[s.clientID])
	srv.mu.RUnlock()
	for _, o := range old {
		if o.principal != s.principal {
			return nil
		}
	}
	if len(old) == 0 {
		s.handedOver = handedOverAtOnce // nothing forwards to s
		return nil
	}
	var took *tetherv1.TakeOver
	s.handedOver = make(chan struct{})
	defer close(s.handedOver)
	for _, o := range old {
		var held uint64
		if resume.GetSessionId() == o.id {
			held = resume.GetLastReceivedSeq()
		}
		t := o.handOver(ctx, s, held)
		switch {
		case t == nil:
		case took == nil:
			took = t
		default: // several sessions held the id for a moment
			took.Inherited += t.GetInherited()
			if took.Dropped == nil {
				took.Dropped = t.GetDropped()
			}
		}
	}
	return took
}

// handOver gives o's undelivered messages to heir, which queues them; from
// now on, messages routed to o go to heir. held is the highest seq of o
// that heir's client says it received: those up to it count as acked. It
// returns nil when o ended meanwhile.
func (o *Session) handOver(ctx context.Context, heir *Session, held uint64) *tetherv1.TakeOver {
	o.mu.Lock()
	if o.state.ended() || o.heir != nil {
		o.mu.Unlock()
		return nil
	}
	o.heir = heir
	held = min(held, o.outSeq)
	from, to := max(o.ackedOut, held)+1, o.outSeq
	o.mu.Unlock()
	// o's log grows no more (enqueue forwards); its client may still ack.
	entries, err := o.readReplay(ctx, from, to)
	o.mu.Lock()
	acked := max(o.ackedOut, held)
	o.mu.Unlock()
	if err != nil {
		o.srv.cfg.logger.Warn("tether: reading the log of a session taken over failed; its messages are reported dropped",
			"session", o.id, "heir", heir.id, "err", err)
		entries = nil
	}
	return heir.bequest(o.id, entries, from, to, acked)
}

// bequest queues to s, the heir of session id, id's entries that are not
// acked (seq > acked), in order, and returns what Welcome.took_over
// reports: how many s inherited, and the range of seqs in [from, to] that
// were neither acked nor inherited (missing from entries, or past what s's
// log holds).
func (s *Session) bequest(id string, entries []broker.Entry, from, to, acked uint64) *tetherv1.TakeOver {
	if n := s.srv.cfg.maxOutboundQueue; len(entries) > n {
		entries = entries[len(entries)-n:] // the heir's log holds no more: keep the newest
	}
	t := &tetherv1.TakeOver{SessionId: id}
	next := max(from, acked+1) // the first seq neither acked nor inherited
	for _, e := range entries {
		if e.Seq <= acked {
			continue // acked since: delivered
		}
		if s.enqueue(e.Message, true) != queued { // full (bytes): the rest is reported dropped
			break
		}
		if e.Seq > next {
			t.Dropped = &tetherv1.SeqRange{First: next, Last: e.Seq - 1}
		}
		t.Inherited++
		next = e.Seq + 1
	}
	if next <= to { // the tail that was not inherited
		first := next
		if t.Dropped != nil {
			first = t.Dropped.First
		}
		t.Dropped = &tetherv1.SeqRange{First: first, Last: to}
	}
	return t
}

// handedOverAtOnce is the Session.handedOver of a session to which nothing
// is forwarded: closed from the start, and shared, as most sessions
// inherit nothing and a channel each would cost them 96 bytes.
var handedOverAtOnce = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// forward queues m, routed to a session that was taken over, to its heir
// once the heir has inherited the session's messages, so that m comes after
// them.
func (s *Session) forward(heir *Session, m *broker.Message, oneRecipient bool) enqueued {
	<-heir.handedOver
	return heir.enqueue(m, oneRecipient)
}

// disinherit undoes inherit for s, which will not open after all: the
// sessions it took messages from keep them (they were copied, not moved)
// and receive their messages again. Messages forwarded to s meanwhile go
// back to one of them.
func (srv *Server) disinherit(ctx context.Context, s *Session) {
	if s.handedOver == nil {
		return
	}
	srv.mu.RLock()
	old := collect(srv.byClient[s.clientID])
	srv.mu.RUnlock()
	var back *Session
	for _, o := range old {
		o.mu.Lock()
		if o.heir == s {
			o.heir = nil
			back = o
		}
		o.mu.Unlock()
	}
	s.mu.Lock()
	forwarded := s.outSeq
	s.transitionLocked(stateClosed, event{detail: "its takeover failed"}) // refuses what is still forwarded
	s.mu.Unlock()
	entries, _ := s.readReplay(ctx, s.tookOver.GetInherited()+1, forwarded)
	for _, e := range entries {
		if back == nil || back.enqueue(e.Message, false) != queued {
			srv.cfg.logger.Warn("tether: a message routed to a session during a failed takeover was dropped", "session", s.id)
		}
	}
	_ = s.log.Delete(ctx)
}

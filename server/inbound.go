package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file is the inbound half of a session: a client message from its
// frame to its ack. A message ends in one of three ways:
//
//   - handled: the Handler took it (the Router: the broker delivered it).
//     Its idempotency key, or its receive mark, is recorded and it is
//     acked.
//   - failed: the Handler refused it with a final code (NOT_FOUND,
//     PERMISSION_DENIED, …). An Error frame with its seq says so, then it
//     is acked: the sender knows it was not handled and will not re-send
//     it.
//   - refused: it could not be handled now (the broker is unreachable, the
//     route timed out: a retryable code, see [retryable]). An Error frame
//     with its seq says so and nothing acks it. Messages the client sent
//     after it on the stream are dropped unread, and the client re-sends
//     from it on (go-back-N), so the messages of a session are handled in
//     order, once each, whatever failed.
//
// A key or mark is never left behind by a message that was not handled:
// with a shared broker it is recorded only after the delivery (a node that
// dies in between leaves nothing, and the re-sent message is delivered);
// with the memory broker it is claimed before and withdrawn on failure.

// handleMessage numbers, dedupes and hands a client message to the Handler.
// Only the stream's reader calls it, holding the session's recvMu.
func (st *stream) handleMessage(m *tetherv1.ClientMessage) error {
	s := st.sess
	msg := newInbound(m, 0)
	pl := st.pipeliner(msg)
	if pl == nil || !st.follows(msg.Target, m.GetSeq()) {
		pl = nil
		if !st.awaitPipeline() {
			return nil
		}
	}
	seq, take, err := st.admit(m.GetSeq())
	if err != nil || !take {
		return err
	}
	// Handled to the end even if the stream breaks meanwhile: a resume
	// then finds the message handled or not, never half.
	if st.handling == nil {
		st.handling = context.WithoutCancel(st.ss.Context())
	}
	ctx := st.handling
	d := st.srv.inboundKey(s, m, seq)
	msg.Seq = seq
	if s.deliveredAhead(seq) {
		// The re-send of a message the pipeline delivered behind one it
		// refused: handled before, once the messages ahead of it are.
		if !st.turn(seq) {
			return nil
		}
		s.forgetAhead(seq)
		st.srv.metrics.dedupeDrops.Inc()
		st.settleKey(ctx, d, seq, true)
		st.settled(seq)
		return nil
	}
	if pl != nil {
		if st.pipelinable(ctx, m, msg, d) {
			st.routeAsync(ctx, pl, d, msg)
			return nil
		}
		if !st.turn(seq) {
			return nil
		}
	}
	if err := st.srv.validMessage(m); err != nil {
		// Failed as sent: a frame within Limits.max_frame_bytes can
		// carry it, so the stream goes on.
		st.fail(seq, err)
		return nil
	}
	if st.srv.brokerDown.Load() {
		// Each attempt would wait for the broker's timeout, holding up the
		// stream's pongs; the client re-sends after a delay.
		st.refuse(seq, status.Error(codes.Unavailable, "the broker is unreachable"))
		return nil
	}
	dup, err := d.check(ctx)
	if err != nil {
		st.refuse(seq, status.Errorf(codes.Unavailable, "the duplicate check failed: %v", err))
		return nil
	}
	if dup {
		// Handled before: by an earlier session of the client id, or on
		// the node the session moved from.
		st.srv.metrics.dedupeDrops.Inc()
		s.inSeq.Store(seq)
		st.refused = 0
		st.noteReceivedForce(seq, true)
		return nil
	}
	if d.shared() && !d.skip {
		// Not handled before: nor, then, any later message beyond the
		// pipeline's reach (see inboundKey).
		s.checked(seq)
	}
	err = st.deliver(ctx, msg)
	st.settleKey(ctx, d, seq, err == nil)
	switch {
	case err != nil && retryable(err):
		st.refuse(seq, err)
		return nil
	case err != nil:
		st.fail(seq, err)
		return nil
	case m.GetGeneratedKey() && d.key == "":
		s.noteKey(m.GetIdempotencyKey())
	}
	st.settled(seq)
	return nil
}

// validMessage checks a client message's payload against
// Limits.max_message_bytes and its small fields against their bounds.
func (srv *Server) validMessage(m *tetherv1.ClientMessage) error {
	if len(m.GetPayload()) > srv.cfg.maxMessageBytes {
		return errTooLarge(len(m.GetPayload()), srv.cfg.maxMessageBytes)
	}
	return validExtras(m.GetCorrelationId(), m.GetIdempotencyKey(), m.GetContentType(), m.GetHeaders())
}

// fail answers message seq, which can never be handled as sent, with an
// Error frame of err's code, and acks it (see "failed" above).
func (st *stream) fail(seq uint64, err error) {
	st.srv.metrics.notHandled.WithLabelValues("failed").Inc()
	st.sendError(err, seq)
	st.settled(seq)
}

// settled marks message seq handled or failed: received, to be acked.
func (st *stream) settled(seq uint64) {
	s := st.sess
	s.inSeq.Store(seq)
	s.inStale.Store(false)
	st.refused = 0
	st.noteReceived(seq)
}

// admit decides what becomes of a message the client numbered seq: handled
// under the returned seq (take), re-acked as a re-send of one handled
// before, or dropped unread as one sent behind a refused message.
func (st *stream) admit(seq uint64) (uint64, bool, error) {
	s := st.sess
	in := max(s.inSeq.Load(), st.pipeTop()) // see pipeline.go
	switch {
	case seq == 0:
		return in + 1, true, nil
	case seq <= in:
		st.srv.metrics.dedupeDrops.Inc()
		st.noteReceivedForce(in, true) // a re-send: ack again, deliver never
		return 0, false, nil
	case seq == in+1:
		return seq, true, nil
	case st.refused != 0:
		// Sent before the client learned of the refusal; it re-sends
		// this too once it does.
		return 0, false, nil
	case s.inStale.Load():
		// Adopted from another node, which received up to seq-1.
		return seq, true, nil
	}
	return 0, false, status.Errorf(codes.InvalidArgument, "message seq %d skips ahead: expected %d (or 0 to let the server number it)", seq, in+1)
}

// refuse answers message seq, which could not be handled now, with an
// Error frame of err's retryable code, and acks nothing: the client
// re-sends it and what followed it.
func (st *stream) refuse(seq uint64, err error) {
	s := st.sess
	if s.inStale.Load() {
		// Everything before seq was handled on the previous node: the
		// client sends from its first unacknowledged message.
		s.inSeq.Store(seq - 1)
		s.inStale.Store(false)
	}
	st.refused = seq
	st.srv.metrics.notHandled.WithLabelValues("refused").Inc()
	st.tellRefused(seq, err)
}

// tellRefused sends the Error frame that refuses message seq with err.
func (st *stream) tellRefused(seq uint64, err error) {
	s := st.sess
	stt := status.Convert(err)
	detail := fmt.Sprintf("message %d was not handled: %s; re-send it, and what was sent after it, from seq %d", seq, stt.Message(), seq)
	s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: detail})
	st.sendError(status.Error(stt.Code(), detail), seq)
}

// retryable reports whether a message the Handler failed with err may
// succeed when sent again: the route failed, not the message.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Canceled:
		return true
	}
	return false
}

// deliver checks that the session may publish to msg's target and hands
// msg to the Handler.
func (st *stream) deliver(ctx context.Context, msg *Message) error {
	cfg := st.srv.cfg
	if !msg.IsReply() {
		if err := cfg.authz.Publish(ctx, msg.Target); err != nil {
			return err
		}
	}
	return st.sess.onMessage(ctx, msg)
}

// inboundTarget is the target of client message m.
func inboundTarget(m *tetherv1.ClientMessage) broker.Address {
	switch t := m.GetTarget().(type) {
	case *tetherv1.ClientMessage_Topic:
		return broker.Topic(t.Topic)
	case *tetherv1.ClientMessage_SessionId:
		return broker.Session(t.SessionId)
	case *tetherv1.ClientMessage_ClientId:
		return broker.Client(t.ClientId)
	}
	return broker.Address{}
}

func newInbound(m *tetherv1.ClientMessage, seq uint64) *Message {
	msg := &Message{
		Seq:            seq,
		Payload:        m.GetPayload(),
		ContentType:    m.GetContentType(),
		Headers:        m.GetHeaders(),
		CorrelationID:  m.GetCorrelationId(),
		IdempotencyKey: m.GetIdempotencyKey(),
		Target:         inboundTarget(m),
	}
	return msg
}

// settleKey settles d, the duplicate check of message seq, handled or not.
// A handled message's key goes to a shared broker that implements
// broker.Recorder without the reader waiting (see marks.go).
func (st *stream) settleKey(ctx context.Context, d idempotency, seq uint64, handled bool) {
	if rec, ok := d.b.(broker.Recorder); ok && handled && d.shared() {
		st.recordAsync(rec, d, seq)
		return
	}
	if err := d.settle(ctx, handled); err != nil {
		st.srv.cfg.logger.Warn("tether: recording a handled message's idempotency key failed; a re-send of it may be handled twice",
			"session", st.sess.id, "seq", seq, "err", err)
	}
}

// inboundKey returns the duplicate check of client message seq of s.
//
// With a shared broker every message has one, so that a node the session
// moves to handles it at most once: its idempotency key when it has one
// (that covers every session of the client id), else a mark of its seq
// (this session, on any node). Every key is recorded, but not every one
// needs checking first: a node handles a session's messages in order and
// records their keys in that order, and an adoption is fenced, so the
// messages of a session that some node handled are a prefix of its seqs.
// A session that never moved has handled nothing it does not know of (its
// received seq drops re-sends); one adopted from another node (inCheck)
// checks its messages until one was not handled before (with pipelining,
// and maxPipelined more: a node that pipelined messages may have handled
// some behind one it refused, pipeline.go, inflight.ahead, and records
// their keys too); no later one can have been handled. An application's key is always checked (another session
// of the client id may have sent it), and so is a key the SDK generated at
// the seqs where a fresh session receives re-sends from an earlier one
// (seq ≤ maxResendSeq).
//
// With the memory broker, an application's key is checked and remembered
// for the dedupe window. A key the SDK generated can repeat only as one of
// a fresh session's first messages (a re-send after a failed resume): it is
// checked there, and otherwise only kept while its message may still be
// re-sent (see Session.noteKey).
func (srv *Server) inboundKey(s *Session, m *tetherv1.ClientMessage, seq uint64) idempotency {
	key := m.GetIdempotencyKey()
	shared := srv.broker.Shared()
	switch {
	case shared && key == "":
		d := srv.idempotency("in/"+s.id, strconv.FormatUint(seq, 10), 2*srv.cfg.resumeWindow)
		d.skip = !s.inCheck.Load()
		return d
	case shared && key != "":
		d := srv.idempotency(s.dedupeScope(), key, srv.cfg.dedupeWindow)
		d.skip = m.GetGeneratedKey() && !s.mayResend(seq) && !s.inCheck.Load()
		return d
	case key != "" && (!m.GetGeneratedKey() || seq <= maxResendSeq):
		return srv.idempotency(s.dedupeScope(), key, srv.cfg.dedupeWindow)
	}
	return idempotency{}
}

// mayResend reports whether client message seq of s may be a re-send of a
// message an earlier session of its client handled: one of the first
// maxResendSeq of a session opened when a resume failed. A client re-sends
// its unacknowledged messages into the session that replaces the one it
// could not resume, and into no other (tetherv1.ClientMessage.generated_key).
// (With a shared broker every handled message's key is recorded, so the
// check is all that is skipped; the memory broker records a generated key
// by checking it, and checks the first maxResendSeq of every session.)
func (s *Session) mayResend(seq uint64) bool { return s.resends && seq <= maxResendSeq }

// checked notes that client message seq of s, adopted, was not handled
// before: with pipelining the messages up to maxPipelined later are still
// checked (see inboundKey), and none after.
func (s *Session) checked(seq uint64) {
	until := s.checkUntil.Load()
	if until == 0 {
		until = seq
		if s.srv.cfg.pipelining {
			until += maxPipelined
		}
		s.checkUntil.Store(until)
	}
	if seq >= until {
		s.inCheck.Store(false)
	}
}

// dedupeScope scopes idempotency keys to the client id, or to the session
// for anonymous clients, within the principal.
func (s *Session) dedupeScope() string {
	if s.clientID != "" {
		return "c/" + s.principal + "/" + s.clientID
	}
	return "s/" + s.id
}

// idempotency is the duplicate check of one message by a key in a scope
// (the zero value checks nothing): check before delivering, settle after.
type idempotency struct {
	b          broker.Broker
	scope, key string
	window     time.Duration
	claimed    bool // check recorded the key (a local broker)
	skip       bool // a shared broker's key that needs no check, only a record (see inboundKey)
}

// shared reports whether d is a key for a shared broker.
func (d *idempotency) shared() bool { return d.key != "" && d.b.Shared() }

func (srv *Server) idempotency(scope, key string, window time.Duration) idempotency {
	return idempotency{b: srv.broker, scope: scope, key: key, window: window}
}

// check reports whether the key was recorded by a message handled before.
// A shared broker's check records nothing; a local broker's claims the key
// at once (so two sessions of one client id cannot both take it).
func (d *idempotency) check(ctx context.Context) (bool, error) {
	switch {
	case d.key == "" || d.skip:
		return false, nil
	case d.b.Shared():
		return d.b.Recorded(ctx, d.scope, d.key)
	}
	dup, err := d.b.Seen(ctx, d.scope, d.key, d.window)
	d.claimed = err == nil && !dup
	return dup, err
}

// settle records the key of a handled message (shared broker), or withdraws
// the claim of one that was not (local broker), so that a retry of it is
// never answered as a duplicate.
func (d *idempotency) settle(ctx context.Context, handled bool) error {
	switch {
	case d.key == "":
	case d.b.Shared() && handled:
		_, err := d.b.Seen(ctx, d.scope, d.key, d.window)
		return err
	case d.claimed && !handled:
		return d.b.Forget(ctx, d.scope, d.key)
	}
	return nil
}

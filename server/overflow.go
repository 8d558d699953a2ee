package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file is the bounded outbound log of a session and what happens when
// it is full (see frames.proto "Flow control"): the session counts the
// messages and payload bytes it holds (sent and unacknowledged, or queued),
// and a message that finds either bound reached meets the server's
// OverflowPolicy.

// OverflowPolicy is what the server does with a message for a session
// whose outbound log is full (announced as Limits.overflow_policy). Under
// no policy is a message lost unreported: a refused message's sender is
// told, a dropped message's receiver is told.
type OverflowPolicy int

// The overflow policies.
const (
	// OverflowBackpressure, the default, refuses a message that has one
	// recipient (a session id, a client id with one session, a reply):
	// its sender is told RESOURCE_EXHAUSTED and retries later (a client
	// message gets a refusal Error frame and is re-sent; Server.Publish
	// and the Publish RPC return the status, with a RetryInfo detail). A
	// message with several recipients (a topic) cannot wait for its
	// slowest one: a full recipient drops its oldest messages as under
	// OverflowDropOldest.
	OverflowBackpressure OverflowPolicy = iota + 1
	// OverflowDropOldest queues the message and drops the oldest
	// unacknowledged ones to make room; a connected client is told at
	// once with a Gap frame, a detached one by Welcome.lost when it
	// resumes.
	OverflowDropOldest
	// OverflowDisconnect cuts the stream (GoAway SLOW_CONSUMER, then
	// RESOURCE_EXHAUSTED) and queues the message; while the session waits
	// for a resume its log stays bounded by dropping the oldest messages,
	// reported in Welcome.lost.
	OverflowDisconnect
)

// seqRange is a range of message seqs, First to Last; First is 0 when it
// is empty. A session keeps the range it dropped while detached in one
// (Session.lost), reported as Welcome.lost on resume: two words, where a
// tetherv1.SeqRange by value would take seven.
type seqRange struct {
	First, Last uint64
}

var overflowNames = [...]string{OverflowBackpressure: "backpressure", OverflowDropOldest: "drop-oldest", OverflowDisconnect: "disconnect"}

// String returns "backpressure", "drop-oldest" or "disconnect".
func (p OverflowPolicy) String() string {
	if p.valid() {
		return overflowNames[p]
	}
	return fmt.Sprintf("OverflowPolicy(%d)", int(p))
}

func (p OverflowPolicy) valid() bool { return p >= OverflowBackpressure && p <= OverflowDisconnect }

// MarshalText returns p's name (see String).
func (p OverflowPolicy) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("tether/server: %v is not an overflow policy", p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText sets p from its name: "backpressure", "drop-oldest" or
// "disconnect".
func (p *OverflowPolicy) UnmarshalText(b []byte) error {
	for i, name := range overflowNames {
		if name != "" && name == string(b) {
			*p = OverflowPolicy(i)
			return nil
		}
	}
	return fmt.Errorf("unknown overflow policy %q: use backpressure, drop-oldest or disconnect", b)
}

func (p OverflowPolicy) proto() tetherv1.OverflowPolicy {
	switch p {
	case OverflowDropOldest:
		return tetherv1.OverflowPolicy_OVERFLOW_POLICY_DROP_OLDEST
	case OverflowDisconnect:
		return tetherv1.OverflowPolicy_OVERFLOW_POLICY_DISCONNECT
	}
	return tetherv1.OverflowPolicy_OVERFLOW_POLICY_BACKPRESSURE
}

// fullRetryDelay is the RetryInfo delay of a message refused because its
// target's log is full: the log empties as the client acknowledges. A
// reader that keeps up acks each half window it takes, so a retry soon
// finds room; a slow one (the Go SDK acks it within 2 s) frees what it
// took by then, and a sender that retries at this pace keeps the log full
// without waiting longer than the reader makes it.
const fullRetryDelay = 250 * time.Millisecond

// fullError is the error of a message refused by a full outbound log: a
// RESOURCE_EXHAUSTED status with a RetryInfo detail (its GRPCStatus) that
// matches broker.ErrFull with errors.Is.
type fullError struct{ st *status.Status }

func (e fullError) Error() string              { return e.st.Message() }
func (e fullError) GRPCStatus() *status.Status { return e.st }
func (e fullError) Unwrap() error              { return broker.ErrFull }

// errFull returns the error of a message to target refused because the
// target's outbound log is full.
func (srv *Server) errFull(target broker.Address) error {
	st := status.Newf(codes.ResourceExhausted, "the outbound log of %s %q is full (Welcome.limits.max_outbound_queue %d messages, max_outbound_bytes %d): it reads too slowly; retry later",
		target.Kind, truncate(target.Name), srv.cfg.maxOutboundQueue, srv.cfg.maxOutboundBytes)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(fullRetryDelay)}); err == nil {
		st = d
	}
	return fullError{st}
}

// sized is a message of the outbound log: its seq and payload size.
type sized struct {
	seq  uint64
	size int
}

// fullLocked reports whether a message of size payload bytes finds the
// log full. A message larger than the byte bound fits an empty log.
func (s *Session) fullLocked(size int) bool {
	n := s.held.len()
	return n >= s.srv.cfg.maxOutboundQueue || n > 0 && s.heldBytes+size > s.srv.cfg.maxOutboundBytes
}

// holdLocked counts message seq, just appended, in the log.
func (s *Session) holdLocked(seq uint64, size int) {
	s.held.push(sized{seq, size})
	s.heldBytes += size
}

// releaseLocked stops counting the messages up to seq (acknowledged).
func (s *Session) releaseLocked(upTo uint64) {
	for {
		m, ok := s.held.front()
		if !ok || m.seq > upTo {
			return
		}
		s.held.pop()
		s.heldBytes -= m.size
	}
}

// overflowLocked makes room in the full log for a message of size bytes,
// as the policy says, or reports false (refused: nothing changed) when the
// message has one recipient and the policy is backpressure.
func (s *Session) overflowLocked(size int, oneRecipient bool) bool {
	policy := s.srv.cfg.overflow
	switch {
	case policy == OverflowBackpressure && oneRecipient:
		s.srv.metrics.overflowRefused.WithLabelValues(policy.String()).Inc()
		return false
	case policy == OverflowDisconnect && s.st != nil:
		s.cutSlowConsumerLocked()
	}
	s.dropOldestLocked(size)
	return true
}

// dropOldestLocked drops the oldest messages of the log until a message of
// size bytes fits, extends the lost range and, when connected, tells the
// client at once with a Gap frame.
func (s *Session) dropOldestLocked(size int) {
	var first, last uint64
	for s.fullLocked(size) {
		m, ok := s.held.pop()
		if !ok {
			break
		}
		s.heldBytes -= m.size
		if first == 0 {
			first = m.seq
		}
		last = m.seq
	}
	if first == 0 {
		return
	}
	// The dropped messages are the log's oldest: trimming removes them
	// (and acknowledged ones not trimmed yet), nothing else.
	if err := s.log.Trim(context.Background(), last); err != nil {
		s.srv.cfg.logger.Warn("tether: trimming dropped messages from the outbound log failed", "session", s.id, "err", err)
	}
	if s.lost.First == 0 {
		s.lost.First = first
	}
	s.lost.Last = last
	policy := s.srv.cfg.overflow
	s.srv.metrics.overflowDropped.WithLabelValues(policy.String()).Add(float64(last - first + 1))
	reason := fmt.Sprintf("the outbound log was full (Welcome.limits.max_outbound_queue %d messages, max_outbound_bytes %d; overflow policy %s): messages %d..%d were dropped; read faster",
		s.srv.cfg.maxOutboundQueue, s.srv.cfg.maxOutboundBytes, policy, first, last)
	s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_LOG_OVERFLOW, detail: reason})
	st := s.st
	if st == nil {
		return // reported in Welcome.lost on resume
	}
	// The client counts the range as received and may ack up to it.
	storeMax(&s.sentSeq, last)
	st.pushGap(&tetherv1.Gap{Lost: &tetherv1.SeqRange{First: first, Last: last}, Reason: reason})
}

// cutSlowConsumerLocked ends the stream of a client whose log is full
// (OverflowDisconnect). What it has not acknowledged stays in the log for
// a resume.
func (s *Session) cutSlowConsumerLocked() {
	msg := fmt.Sprintf("slow consumer: the outbound log is full (%d messages, %d bytes unacknowledged; Welcome.limits.max_outbound_queue %d, max_outbound_bytes %d): read and ack faster, then resume",
		s.held.len(), s.heldBytes, s.srv.cfg.maxOutboundQueue, s.srv.cfg.maxOutboundBytes)
	s.srv.metrics.slowConsumers.Inc()
	s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_SLOW_CONSUMER, msg, time.Second, status.Error(codes.ResourceExhausted, msg))
	s.detachLocked(msg)
}

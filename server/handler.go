package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
)

// Handler is the application's view of sessions.
//
// The calls of one session are serialized: never two at once, in the order
// of the session's events; calls of different sessions run concurrently.
//
//   - OnConnect runs on the goroutine of the Connect call whose stream
//     starts carrying the session (fresh or resumed), before Welcome;
//   - OnMessage runs on the stream's reader goroutine;
//   - OnClose runs exactly once per session on this node, only if an
//     OnConnect returned nil, and last: no call of the session follows it.
//     It runs on the goroutine that ended the session (the reader, after a
//     Close frame; the Connect goroutine of a newer session that took the
//     client id over; the resume-window timer; Close or Drain; AdminService's
//     CloseSession; the broker's goroutine delivering an eviction from
//     another node) or, when another call of the session runs at that
//     moment, on that call's goroutine once it returns.
//
// OnConnect and OnMessage wait while another call of their session runs (a
// resume's OnConnect while the previous stream's OnMessage finishes). The
// calls must not block for long, or the session stops reading (and, past
// the heartbeat deadline, is declared dead); none may wait for another call
// of its own session.
type Handler interface {
	// OnConnect runs when a stream starts carrying a session, fresh or
	// resumed (see Session.Resumed). A non-nil error ends the stream with
	// that error's gRPC status before Welcome is sent: use status.Error
	// with a code from the error model in tether_service.proto, which says
	// what the client then does (PERMISSION_DENIED: it gives up;
	// UNAVAILABLE: it retries later). A fresh session it refuses is closed
	// without OnClose.
	OnConnect(ctx context.Context, s *Session) error
	// OnMessage runs for every client message, once, in seq order; with a
	// shared broker, at least once: a node that dies after OnMessage
	// returned and before the message's idempotency key (or receive mark)
	// was recorded leaves nothing behind, and the client's re-send runs
	// OnMessage again on the node its session moves to, with the same
	// IdempotencyKey. A Handler with effects outside tether dedupes by
	// it; the Router needs nothing, as the receiving session drops a
	// second copy of a message by its key (broker.Message.DedupeKey). A
	// non-nil error is sent to the client as a non-fatal Error frame with
	// the error's status code and message; the session goes on. With
	// UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED or
	// CANCELED the message is not acknowledged and the client sends it
	// again (OnMessage runs for it again); with any other code it is
	// acknowledged as failed, and the client reports it. ctx is not
	// canceled when the stream breaks: a message being handled is handled
	// to the end, so that a resume finds it handled or not, never half.
	OnMessage(ctx context.Context, s *Session, m *Message) error
	// OnClose runs once when the session ends for good: closed by its
	// client, an operator, a takeover of its client id, the end of its
	// resume window or the server's Close; not when a stream breaks and
	// the session waits for a resume, nor when it moves to another node.
	// See Handler for when and where it runs.
	OnClose(s *Session, reason string)
}

// Message is a message a client sent, as the Handler sees it.
type Message struct {
	// Seq is the client's sequence number for it.
	Seq uint64
	// Target is where the client addressed it; the zero Address means a
	// reply to the request with the same CorrelationID.
	Target broker.Address
	// Payload, ContentType and Headers are as the client sent them.
	Payload     []byte
	ContentType string
	Headers     map[string]string
	// CorrelationID links a request and its reply.
	CorrelationID string
	// IdempotencyKey is the client's dedupe key, if any (repeats never reach
	// the Handler).
	IdempotencyKey string
}

// IsReply reports whether m has no target and so answers a request.
func (m *Message) IsReply() bool { return m.Target == broker.Address{} }

// Router is the default Handler, the one tetherd runs: a message to a topic
// reaches that topic's subscribers, one to a session id or client id reaches
// that session, and a reply (no target, a correlation id) returns to the
// session whose request carried that correlation id. A message to a topic
// without subscribers is dropped silently; one to an unknown session or
// client id, or a reply whose requester is gone, gets an Error frame
// (NOT_FOUND) back.
type Router struct{}

// OnConnect accepts every session.
func (Router) OnConnect(context.Context, *Session) error { return nil }

// OnMessage routes m; see [Router].
func (Router) OnMessage(ctx context.Context, s *Session, m *Message) error {
	if m.IsReply() {
		if m.CorrelationID == "" {
			return status.Error(codes.InvalidArgument, "message has no target and no correlation id: set topic, session_id or client_id, or reply with the request's correlation_id")
		}
		n, err := s.ReplyTo(ctx, m.CorrelationID, m.Payload, m.ContentType, m.Headers)
		if err != nil {
			return routeError(err)
		}
		if n == 0 {
			return status.Errorf(codes.NotFound, "reply %q: the requesting session is gone", m.CorrelationID)
		}
		return nil
	}
	n, err := s.Forward(ctx, m)
	switch {
	case err != nil:
		return routeError(err)
	case n == 0 && m.Target.Kind != broker.KindTopic:
		return status.Errorf(codes.NotFound, "no session for %s %q: it is unknown or has ended; direct messages are not stored for absent sessions", m.Target.Kind, truncate(m.Target.Name))
	}
	return nil
}

// PassThrough is implemented by a Handler whose OnMessage hands some
// messages to [Router] unchanged (and does nothing else with them). With a
// broker that pipelines (broker.Pipeliner: NATS), the server routes those
// messages to a session or client id itself, as Router would, without its
// reader waiting for each route, as it does for Router; the others go to
// OnMessage one at a time, in order with them.
type PassThrough interface {
	Handler
	// PassesToRouter reports whether OnMessage(ctx, s, m) would only
	// return Router{}.OnMessage(ctx, s, m). It must not block.
	PassesToRouter(s *Session, m *Message) bool
}

// routeError is the status of a failed route: the error's own, or
// UNAVAILABLE (the broker failed; sending again may succeed).
func routeError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.Unavailable, "routing the message failed: %v", err)
}

// OnClose does nothing.
func (Router) OnClose(*Session, string) {}

// ErrNoRequest is returned by Session.ReplyTo when the session received no
// request with that correlation id (or it was forgotten: the server keeps
// the most recent requests per session only).
var ErrNoRequest = errors.New("tether/server: no request with this correlation id was delivered to the session")

package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
)

// PublishOption sets an optional field of a published message.
type PublishOption func(*broker.Message)

// WithContentType sets the message's content type.
func WithContentType(ct string) PublishOption {
	return func(m *broker.Message) { m.ContentType = ct }
}

// WithHeaders sets the message's headers. The map is not copied: do not
// change it after publishing.
func WithHeaders(h map[string]string) PublishOption {
	return func(m *broker.Message) { m.Headers = h }
}

// WithCorrelationID sets the message's correlation id, making it a request
// the receiver can reply to, or a reply to such a request.
func WithCorrelationID(id string) PublishOption {
	return func(m *broker.Message) { m.CorrelationID = id }
}

// ErrDuplicate is returned by [Server.Publish] when the idempotency key was
// seen within the dedupe window; nothing was sent.
var ErrDuplicate = errors.New("tether/server: duplicate idempotency key; the message was already published")

// publish stamps m and hands it to the broker.
func (srv *Server) publish(ctx context.Context, m *broker.Message) (int, error) {
	if err := validAddress(m.Target); err != nil {
		return 0, err
	}
	if len(m.Payload) > srv.cfg.maxMessageBytes {
		return 0, errTooLarge(len(m.Payload), srv.cfg.maxMessageBytes)
	}
	if err := validExtras(m.CorrelationID, "", m.ContentType, m.Headers); err != nil {
		return 0, err
	}
	if m.PublishedAt.IsZero() {
		m.PublishedAt = time.Now()
	}
	n, err := srv.broker.Publish(ctx, m)
	if errors.Is(err, broker.ErrFull) {
		return 0, srv.errFull(m.Target)
	}
	return n, err
}

// Publish delivers a message to a topic's subscribers, a session or a client
// id's session, on this node or (with a clustered broker) any node, and
// returns how many sessions it reached. Reaching none is not an error.
// When the one session it is for has a full outbound log (under
// OverflowBackpressure) it is not queued and Publish returns a
// RESOURCE_EXHAUSTED status with a RetryInfo detail, which matches
// broker.ErrFull with errors.Is: retry after that delay.
// idempotencyKey, when not empty, makes a repeat within the dedupe window
// return ErrDuplicate instead of delivering again. The key is recorded only
// for a Publish that succeeded: one that failed, reached no session or
// client id, or whose node died before it answered, leaves no key behind, so the caller's retry with the same
// key is delivered (if the failure hid a delivery, twice: at least once,
// never lost).
func (srv *Server) Publish(ctx context.Context, to broker.Address, payload []byte, idempotencyKey string, opts ...PublishOption) (int, error) {
	d := idempotency{}
	if idempotencyKey != "" {
		d = srv.idempotency("publish", idempotencyKey, srv.cfg.dedupeWindow)
	}
	seen, err := d.check(ctx)
	if err != nil {
		return 0, status.Errorf(codes.Unavailable, "checking the idempotency key failed: %v", err)
	}
	if seen {
		srv.metrics.dedupeDrops.Inc()
		return 0, ErrDuplicate
	}
	m := &broker.Message{Target: to, Payload: payload, DedupeKey: dedupeKey("publish", idempotencyKey)}
	for _, o := range opts {
		o(m)
	}
	n, err := srv.publish(ctx, m)
	// A session or client id that nothing reached did not get the
	// message: its retry must not be a duplicate. (A topic without
	// subscribers got it: each of them.)
	handled := err == nil && (n > 0 || to.Kind == broker.KindTopic)
	if serr := d.settle(context.WithoutCancel(ctx), handled); serr != nil {
		srv.cfg.logger.Warn("tether: settling a publish's idempotency key failed", "handled", handled, "err", serr)
	}
	return n, err
}

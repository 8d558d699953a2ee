package server

import (
	"context"
	"errors"
	"time"

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
	return srv.broker.Publish(ctx, m)
}

// Publish delivers a message to a topic's subscribers, a session or a client
// id's session, on this node or (with a clustered broker) any node, and
// returns how many sessions it reached. Reaching none is not an error.
// idempotencyKey, when not empty, makes a repeat within the dedupe window
// return ErrDuplicate instead of delivering again; a Publish that fails
// forgets its key, so that the caller may retry with it.
func (srv *Server) Publish(ctx context.Context, to broker.Address, payload []byte, idempotencyKey string, opts ...PublishOption) (int, error) {
	if idempotencyKey != "" {
		seen, err := srv.broker.Seen(ctx, "publish", idempotencyKey, srv.cfg.dedupeWindow)
		if err != nil {
			return 0, err
		}
		if seen {
			srv.metrics.dedupeDrops.Inc()
			return 0, ErrDuplicate
		}
	}
	m := &broker.Message{Target: to, Payload: payload}
	for _, o := range opts {
		o(m)
	}
	n, err := srv.publish(ctx, m)
	if err != nil && idempotencyKey != "" {
		// Let the caller's retry through. If the failure hid a delivery
		// (a node died after storing the message, before answering), the
		// retry delivers it twice: at least once, never lost.
		_ = srv.broker.Forget(context.WithoutCancel(ctx), "publish", idempotencyKey)
	}
	return n, err
}

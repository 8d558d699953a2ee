package broker

import (
	"context"
	"time"
)

// Recorder is implemented by a shared [Broker] that can record idempotency
// keys without the caller waiting for each: a server's reader records the
// key (or the receive mark) of each message it handled and goes on to the
// next, and acknowledges a message to its client only once its key is
// stored. Keys recorded one after the other by one caller are stored in
// that order, so that what a node that died had stored of them is a
// prefix of what it recorded.
type Recorder interface {
	// Record records key in scope until window ends, as [Broker.Seen]
	// does for a key not yet recorded (a key recorded before is recorded
	// again, its window starting anew), and returns without waiting for
	// the store. done runs exactly once, on another goroutine: with nil
	// once the key is stored, or with the error that kept it from being
	// stored (one matching [ErrUnavailable] when the service behind the
	// broker is unreachable). done must not block.
	Record(scope, key string, window time.Duration, done func(error))
}

// DeferredPublisher is implemented by a shared [Broker] whose Publish, for
// a message it delivers to a session on this node, waits only for the
// message to be stored (the session's log append): PublishDeferred returns
// as soon as the message is queued to its sessions, and settle waits for
// the store. A server's reader delivers the messages of a batch frame that
// way and waits once, for all of them, before it acknowledges any.
type DeferredPublisher interface {
	// PublishDeferred is [Broker.Publish], except that when it delivered m
	// on this node it returns at once with settle set: settle waits,
	// within ctx, until m is stored, and returns the error Publish would
	// have returned if not (m was queued to its sessions but may not
	// survive this node). settle is nil when nothing is left to wait for
	// (m went to another node, which answered once it stored m, or was
	// parked). A failed PublishDeferred returns no settle.
	PublishDeferred(ctx context.Context, m *Message) (n int, settle func(context.Context) error, err error)
}

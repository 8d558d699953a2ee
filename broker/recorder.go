package broker

import "time"

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
	// the store. done runs exactly once, on another goroutine or, when the
	// key is stored at once (a store in the node's memory), before Record
	// returns: with nil once the key is stored, or with the error that
	// kept it from being stored (one matching [ErrUnavailable] when the
	// service behind the broker is unreachable). done must not block.
	Record(scope, key string, window time.Duration, done func(error))
}

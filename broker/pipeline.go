package broker

import "context"

// Pipeliner is implemented by a shared [Broker] that can route one
// sender's messages without the sender waiting for each: a server's reader
// hands a session's messages to a [Pipeline] and goes on to the next,
// acknowledging each to its client only once its Publish would have
// returned. Where a Publish waits for a round trip (a message routed to
// another node, a log append stored), a sender that waited for each would
// send one message per round trip.
type Pipeliner interface {
	// Pipeline returns a new pipeline for one sender's messages. It holds
	// nothing once its messages are done: a sender that stops using it
	// needs not close it.
	Pipeline() Pipeline
}

// Pipeline publishes the messages of one sender in order, without the
// sender waiting for each.
//
// Publish routes m as [Broker.Publish] does and may return before m's
// fate is known; done then reports what Publish would have returned. done
// runs exactly once per Publish, in the order of the Publish calls, on a
// goroutine of the pipeline (never before Publish returns), and must not
// wait for a later Publish of the same pipeline to return.
//
// Order: the messages published to one target arrive there in the order
// published. A message published while an earlier one to the same target
// is on its way, and that finds the target somewhere the earlier one did
// not arrive (it moved in between, or refused the earlier one as full), or
// finds no node holding it after the earlier one failed, is neither
// delivered nor kept for the target: done reports an error matching
// [ErrUnavailable], and the sender sends it again once the earlier one's
// done has run. So a
// sender that, as a server does with its client, answers the first
// message that failed with "re-send from here" and ignores the fate of the
// messages behind it, delivers each message once and in order (a message
// behind one whose fate was unknown, a timeout, may also have arrived:
// the receiver drops its second copy by its [Message.DedupeKey], as for
// any retried Publish).
//
// A message whose ctx ended (its sender left) is not kept for its target
// when it finds no node holding it: done reports an error matching
// [ErrUnavailable]. Its outcome is still awaited and reported.
//
// Publish is not safe for concurrent use: one sender calls it.
type Pipeline interface {
	Publish(ctx context.Context, m *Message, done func(n int, err error))
}

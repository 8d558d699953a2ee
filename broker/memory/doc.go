// Package memory provides [Broker], the in-memory [broker.Broker]: tether's
// embedded default.
//
// A memory Broker serves one process. Several nodes may each run their own,
// but then they are independent: a message reaches only the sessions of the
// node it was published on, and a session resumes only on the node that holds
// it. Cross-node routing is the NATS broker's job.
//
// Create one with [New], attach the node with [Broker.Start], and keep it for
// the life of the server:
//
//	b := memory.New()
//	defer b.Close()
//	if err := b.Start(ctx, "node-1", hub); err != nil {
//		return err
//	}
//
// # Performance considerations
//
// [Broker.Publish] and [broker.Log.Append] are on the per-message path.
// Publish looks the target up without taking a lock and then calls the
// [broker.Receiver] on the caller's goroutine; it allocates nothing. Bind and
// Unbind take one mutex.
// Append locks only its session's log and allocates only when the log's ring
// buffer has to grow. [Broker.Log] allocates a small handle, so call it once
// per session and keep the result.
//
// The broker starts no goroutines and never blocks beyond its short internal
// locks, so it ignores contexts. [Broker.Close] drops everything it holds.
//
// # Memory
//
// [Broker.Seen] forgets expired keys lazily: each call sweeps the keys whose
// window has passed from the front of a queue kept in recording order, at an
// amortised constant cost. When calls use windows of different lengths, a
// key recorded behind one with a longer window is forgotten (it already
// reports false) but its memory is freed only once the longer window has
// passed too.
//
// A session's log is a ring buffer that grows by doubling up to the capacity
// asked for and shrinks again, down to 64 entries, as [broker.Log.Trim]
// empties it. Session
// records stay until [Broker.DeleteSession]; the memory broker does not act
// on their Expires field.
package memory

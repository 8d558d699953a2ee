// Package broker defines what a tether server needs from the layer below its
// sessions: routing messages to the nodes that hold their addressees, an
// idempotency check, a bounded outbound log per session and the session
// records that let a session be resumed. The [Broker] and [Log] interfaces
// state the contract; this documentation states the promises every
// implementation keeps, and package
// [github.com/tetherhq/tether/broker/brokertest] checks them.
//
// Package [github.com/tetherhq/tether/broker/memory] is the embedded default:
// one process, or independent nodes where a message reaches only the node it
// was published on and a session resumes only where it lives. Package
// [github.com/tetherhq/tether/broker/nats] is shared by many nodes over NATS
// and JetStream: push to a session or client id held by any node, topic
// fan-out over the cluster, resume on any node and dedupe across nodes.
//
// # Lifecycle
//
// [Broker.Start] attaches the local node and its [Receiver]; it is called
// once, before any other method. [Broker.Close] releases the broker: every
// call made after Close returns, Close included, fails with [ErrClosed], and
// so do the methods of a [Log] obtained before. A call already in progress
// when Close is called may still complete. Close may also be called without
// Start.
//
// # Routing
//
// An [Address] is a topic, a session id or a client id; addresses of
// different kinds never match, even with the same name.
//
// [Broker.Bind] tells the broker that this node has a session behind an
// address. Binds are counted per address: two Binds need two
// [Broker.Unbind] calls before the node stops receiving for it. Unbind of an
// address with no binds left does nothing; the count never goes below zero.
//
// [Broker.Publish] hands the message to the Receiver of every node where
// m.Target has at least one bind, once per node however many binds it holds,
// and returns the sum of what [Receiver.Deliver] returned: the sessions
// reached. A message nobody bound is not an error: Publish returns 0 and a
// nil error. On the publishing node, Deliver has returned before Publish
// does.
//
// Deliver may be called from any goroutine and concurrently with itself. A
// Broker holds none of its locks while calling it, so Deliver may call the
// Broker back (to append to a log, say); it must not block for long.
// [Message] values are immutable once published: a Broker and its Receivers
// may share them.
//
// # Idempotency
//
// [Broker.Seen] is the check behind idempotency keys. The first call for a
// (scope, key) pair records it and returns false. Any call for the same pair
// before the window of the recording call has passed returns true and changes
// nothing: repeats do not extend the window. Once the window has passed the
// pair is forgotten, and the next call records it afresh; [Broker.Forget]
// forgets it at once (the server calls it when delivering the message
// failed, so that a retry is not dropped). [Broker.Recorded] reads a pair
// without recording it: with a shared broker the server checks a key with
// it before delivering and records it with Seen only once the delivery
// succeeded, so that a node that dies in between leaves no key behind.
// Scopes are
// independent name spaces (a client id, for one). A window of zero or less
// records nothing and reports false. Implementations forget expired pairs, so
// the memory Seen holds follows the rate of new keys times the longest window
// in use, not the total number of keys ever seen.
//
// A [Message] carries its sender's key as [Message.DedupeKey], and a
// receiving session drops a second copy of it: the other end of the same
// promise, for a message delivered by a node that died before it could say
// so. Implementations carry DedupeKey with the message, as every other
// field.
//
// # Outbound logs
//
// [Broker.Log] returns a handle to one session's outbound log without doing
// any I/O; handles for the same session id share one log. A log nobody has
// appended to reads as empty.
//
// [Log.Append] adds an entry whose seq is greater than that of the last entry
// in the log; a lower or equal seq is an error and changes nothing, and so is
// a capacity below 1. When the log then holds more than capacity entries, the
// oldest are dropped: [Appended.Dropped] says how many (they are lost for
// good) and [Appended.Len] how many entries remain, at most capacity.
//
// [Log.Trim] removes every entry with seq ≤ upTo: an acknowledgement.
// [Log.Read] calls fn with the entries whose seq is ≥ from, in seq order,
// until fn returns false or the entries run out. fn is called with no lock
// held and may use the log, but entries appended during a Read may or may
// not be visited. [Log.Delete] removes the whole log; a later Append starts a
// new one, with any seq.
//
// # Session records
//
// [Broker.PutSession] stores a copy of a [SessionRecord], replacing any
// record with the same ID. [Broker.GetSession] returns a copy, or ok false
// and a nil error for an unknown id; callers may modify the slices of what
// they put or got without affecting what is stored. [Broker.DeleteSession]
// forgets a record; deleting an unknown id does nothing. A Broker may forget
// a record once its Expires time has passed, never earlier, and never one
// whose Expires is zero; the server deletes records it no longer needs.
//
// # Shared brokers
//
// A broker whose [Broker.Shared] reports true is shared by several nodes
// (each with its own Broker value, started with its own node name), and
// keeps these further promises:
//
//   - Routing: Publish reaches the Receivers of every node that bound
//     m.Target, whichever node publishes. A Bind or Unbind may take a
//     moment to reach the other nodes: until it has, their Publish and
//     Evict may miss the binding node (or still reach the unbinding one).
//     For session and client targets, Publish returns only once each node
//     reached has appended the message to the session's log (it is
//     durable). For topics, the count covers the publishing node's
//     sessions only: remote deliveries are not counted. Messages from one
//     publisher to one address arrive in the order they were published.
//   - Parking: when a message to a session or client id reaches no node,
//     but a record that is neither closed nor expired names that session
//     (or, for a client id, the latest such session of that client id),
//     the broker keeps the message for the session's resume window and
//     counts it as reached (1). The next node to bind that address gets
//     the kept messages through Deliver, in order, before any message
//     published after them. That includes messages kept after its Bind
//     returned, while the Bind had not reached the publishing node yet.
//   - Logs, records and Seen are the same on every node. A session's log
//     is written (appended to, trimmed, deleted) by the node holding the
//     session, the one that bound its address, which may keep what it
//     wrote in memory too. Another node reads what it wrote once it
//     stopped writing: once it released the session on an [Eviction]
//     (stopped writing to the log and unbound the session's address),
//     that is once [Broker.Evict] for the session returned. A node that
//     released a session and takes it back reads its log as the other
//     nodes left it, not as it wrote it before. A record put, or a key
//     recorded by Seen, on one node is read so on every node once the
//     call returned.
//   - A broker may keep logs on the node that writes them instead (the
//     nats broker's node durability mode): its [Log] then implements
//     [Bounded], another node reads it as empty, and Seen is per node. A
//     server adopting a session from such a log reports what it lost
//     (RESUMED_WITH_GAP) rather than resuming it whole.
//   - [Broker.Evict] reaches the holders of e.Session or e.Client on the
//     other nodes (those that bound [Session](e.Session) or
//     [Client](e.Client)) through [Receiver.Evict]. It returns once the
//     holder released the session (e.Session) or ended those of the
//     client id (e.Client), so that their logs are complete when the
//     caller reads them. Without a holder it returns nil
//     without waiting for any timeout. A Broker calls Receiver.Evict as it
//     calls Deliver, holding none of its locks: the Receiver may call the
//     Broker back (to Unbind the session, say).
//
// # Contexts
//
// The ctx of each call bounds the I/O of brokers that do any. A broker that
// never blocks, such as the memory one, may ignore it.
//
// # Errors
//
// A broker that depends on a remote service returns errors matching
// [ErrUnavailable] (with errors.Is) for failures a later call may not meet:
// the service unreachable or electing a leader, a node that holds the
// target gone. Callers map them to a retryable answer (gRPC UNAVAILABLE, an
// Error frame the client re-sends after) rather than ending a stream. The
// memory broker never returns it.
package broker

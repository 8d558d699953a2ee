// Package nats is a [broker.Broker] shared by many tether nodes over NATS,
// with JetStream keeping what must outlive a node: each session's outbound
// log, messages kept for sessions no node holds, session records and
// idempotency keys. Every node connects to the same NATS system (one
// server, or a cluster) with the same prefix; nodes need no configuration
// about each other.
//
// With it, a session resumes on any node: the node it resumes on takes it
// over from the node that held it (or from the record and the log, when
// that node died), a message to a session or client id reaches it wherever
// it is, and a message sent while no node holds it is kept and delivered,
// in order, when it comes back. See package broker ("Shared brokers") for
// the promises. That is the default, [DurabilityCluster]; in
// [DurabilityNode] logs stay in the holding node's memory instead, at no
// JetStream write per message, and a resume on another node reports what
// it lost (see # Durability).
//
// # Layout
//
// Everything is named under a prefix P (default "tether"). Names inside
// subjects (session ids, client ids, topics) are one token each, in
// unpadded base64url, so any name is a valid subject token.
//
// Routing uses core NATS, with one subscription per address a node holds,
// so a node receives only its own sessions' traffic and interest scales
// with the number of sessions, not with nodes × sessions:
//
//	P.r.s.<session id>    a session; requests, answered with the count reached
//	P.r.c.<client id>     a client id's session; requests, likewise
//	P.r.t.<topic>         a topic's subscribers; plain publishes (fan-out)
//
// The same subjects carry control messages, marked by a Tether-Op header:
// "evict" (a request; see [broker.Broker.Evict]), "poke" (a message was
// just parked for this address) and, on a session's subject, "handoff" (a
// message handed on to the session, whatever its target; see # Failures).
// Each node also answers on
//
//	P.node.<node>         its liveness subject, answered at once
//
// which a node waiting for another's answer asks (see # Failures).
//
// JetStream holds two streams, both with Replicas copies:
//
//	P_LOG  subjects P.log.<session id>, P.park.<s|c>.<id>
//	       limits retention, MaxAge = Retention, MaxMsgsPerSubject = MaxLogEntries
//	P_KV   subjects P.rec.<session id>, P.cid.<client id>, P.seen.<sha256>,
//	       P.seen.park_<s|c>_<id>, P.seen.move_<session id>,
//	       P.seen.adopt_<session id>
//	       one message per subject, per-message TTL
//
// P.log.<id> is a session's outbound log: one message per entry, its body
// the encoded message with the session's seq. Only the node holding the
// session writes it; it keeps its own copy in memory, appends
// asynchronously and waits for JetStream's acknowledgement before it tells
// a publisher the message was delivered (so "delivered" means durable),
// and purges acknowledged entries in the background. Append itself does
// no NATS I/O (a server calls it under its session's lock): it queues the
// entry, and one goroutine of the node publishes the queue in order, many
// appends in flight, whose acknowledgements Sync and publishers await in
// batches. Dropping the oldest entries of a full log costs O(1). A node
// that takes a session over reads the subject once, before the session is
// shared ([broker.Preparer]). There is no stream per session: one
// stream holds every log, and a subject costs JetStream an index entry,
// which holds for hundreds of thousands of sessions.
//
// P.park.s.<id> and P.park.c.<id> keep messages for a session or client id
// that no node held when they were published, if a live record stands
// behind it (for a client id, P.cid.<id> names its latest session). The
// next node to bind the address delivers them, in order, and purges them,
// each exactly once: a node delivers parked messages only under a claim,
// a compare-and-set on P.seen.park_<s|c>_<id> that names the node's
// broker instance, the last stream seq it delivers and when the claim
// ends (3 × Timeout later). Another node that binds the address meanwhile
// leaves the claimed messages alone and looks again when the claim ends;
// by then the claimer has purged them, or it died first and this node
// delivers them. A drain, once begun, is not cut short by its caller's
// context (a stream reset, a publisher giving up): it delivers, waits for
// the log appends (writing again those that failed), and purges exactly
// what it delivered once it is stored; until then it stays parked, not
// delivered again by this node, so that it survives the node. A parked message
// that reaches no session (the receiver returned 0: its log append failed,
// say) stays parked with those after it. A drain that fails is tried
// again while the address is bound (after 250ms, doubling up to a
// minute); a Bind whose drain failed still succeeds, since some messages
// may have gone to the caller's session already and failing would make it
// drop that session.
//
// A node that parked a message for an address pokes it (a poke may go
// nowhere while a new subscription's interest spreads through a NATS
// cluster, so it pokes again a second later, and a node drains what is
// parked for an address it bound once more two seconds after the bind)
// and, for ten seconds, marks
// its next messages to the address with the stream seq of the last one it
// parked (header Tether-Parked). The node holding the address delivers
// what is parked up to that seq before a marked message, so that no
// message overtakes one its own publisher parked before it; an unmarked
// delivery reads nothing from JetStream. From a bind, and from a
// reconnect, until its first drain succeeds, a node delivers nothing to
// the address without draining first, whoever the publisher. When a
// drain fails, the delivery that asked for it is refused (the publisher
// parks it behind the others) rather than let it overtake them. Left
// open: in a NATS cluster, while a new subscription's interest spreads
// (milliseconds), a publisher on another server may park after the
// holder's first drain, and a message of another publisher may then
// overtake that one until the poke (or the re-check two seconds after the
// bind) drains it; a publisher's own messages keep their order.
//
// P.rec.<id> is a session's record (JSON, readable with the nats CLI): it
// lives RecordTTL after its last update while the session is connected,
// and Retention past the end of its resume window once detached or closed.
// The node holding a connected session stores its record (and P.cid.<id>)
// again every RecordTTL/3, read and written back by a compare-and-set on
// its own last write, so that a session connected for days still resumes
// on another node after its node dies; it stops once another node (the
// session moved) or a newer session of the client id wrote the subject.
//
// With Replicas 1 both streams allow direct gets, and every read (a
// record, a key, the check for parked messages) is one, answered by the
// stream's only server outside JetStream's API queue; with more replicas a
// lagging follower could answer one, so reads are API requests to the
// leader.
// P.cid.<id> lives as long as the record that wrote it. P.seen.<digest> is
// an idempotency key; it is recorded with a compare-and-set on its
// subject, so exactly one node is first, holds the key's deadline (so the
// window is exact to the caller's clock) and lives as long as the window.
// The keys (and receive marks) of the client messages a server handled go
// through [Broker.Record] instead ([broker.Recorder]): one plain write per
// key, queued with the log appends and published by the same goroutine,
// so that a server's reader does not wait for each, a node's keys are
// stored in the order it recorded them, and an eviction's flush waits for
// them as for its appends.
//
// # What is stored where, and for how long
//
//   - Unacknowledged messages of every session: P_LOG, until acknowledged,
//     and at most Retention (default 10 minutes) or MaxLogEntries per
//     session.
//   - Messages for a session no node holds: P_LOG, until a node takes the
//     session, and at most Retention.
//   - Session records: P_KV, as above; tombstones of closed sessions for
//     Retention.
//   - Idempotency keys, and the seqs of client messages already handled
//     (the server's receive marks): P_KV, for their window.
//
// # Trust
//
// NATS permissions are the trust boundary. Whoever may publish on P.r.>
// can deliver messages to any session and evict any session or client id,
// and whoever may write to P_KV or P_LOG can forge records, resume tokens
// and logs. Give tether nodes a NATS account (or user permissions) of
// their own. A node drops routed messages it cannot decode, and answers an
// eviction it cannot decode with an error.
//
// # Limits
//
// Nodes of an earlier version do not answer on P.node.<node>: a publish
// to a session they hold whose answer takes longer than Heartbeat fails
// (retryably) while a cluster is being upgraded.
//
// A claim on an adoption lapses after 3 × Timeout: an adoption that takes
// longer (each of its steps may take up to Timeout) may meet another node's
// claim, and then leaves the session to that node, which may have begun
// to write its log meanwhile.
//
// Each node delivers routed messages on 16 goroutines, each the messages
// of the addresses whose route subject hashes to it, in order: a delivery
// that waits for NATS (a marked one draining what is parked, an eviction)
// holds up the other addresses of its shard. Deliveries marked with a
// park a drain already dealt with share that drain.
// Messages to different addresses (a topic and a session, say) may be
// delivered in another order than they were published.
//
// # Pipelines
//
// A server (unless server.WithPipelining turns it off) routes a session's
// messages to a session or client id through a [broker.Pipeline]
// ([Broker.Pipeline]): each is delivered (on this node)
// or sent as a request (to the node holding its target) at once, and the
// pipeline's goroutine waits, in order, for what [Broker.Publish] would
// have waited for: the log appends stored, the holder's answer, a park.
// The sender pays a round trip per window of messages, not per message.
//
// A pipelined request carries its pipeline's id (Tether-Pipe), its number
// there (Tether-Pipe-Op) and, when one to the same target was still on its
// way as it left, that one's number (Tether-Pipe-After). A node delivers it
// only if the last message of that pipeline it delivered to the address is
// the one named: otherwise its predecessor was refused there (the log was
// full) or went elsewhere (the session moved in between), and the node
// answers "behind" without delivering it; the sender reports it
// unavailable, and sends it again once it knows its predecessor's fate.
// For the same reason a pipelined message that finds no node holding its
// target is parked only if its predecessor, if any, arrived (or was
// parked): one behind a failure is reported unavailable instead.
// So no pipelined message overtakes an earlier one of its sender. Each
// address remembers the last message of up to 1024 pipelines; past that it
// forgets them all, which costs each pipeline with a message on its way
// one "behind".
//
// # Durability
//
// [Options].Durability chooses where sessions' outbound logs live, and so
// what a resume on another node keeps and what each message costs
// (tetherd: --nats-durability).
//
// [DurabilityCluster], the default, is what the rest of this documentation
// describes: every log in JetStream (P.log.<id>), each message to a
// session stored there before it goes out and before its publisher is
// told it was delivered. A session resumes on any node, after its node
// died too, and loses nothing; idempotency keys and receive marks are
// shared, so a message is handled once whatever node a client re-sends it
// to.
//
// [DurabilityNode] keeps each log in the memory of the node holding the
// session, as package memory does, and writes nothing to JetStream per
// message: routing between nodes rides core NATS (the requests above),
// answered once the holder queued the message in its memory. What it
// promises:
//
//   - Resumed on the node that holds it, a session loses nothing, as with
//     the memory broker. Welcome.resume_anywhere is false, so the SDK
//     returns there first.
//   - Resumed on another node (its node died, drained, or the client went
//     elsewhere), the session is adopted as in DurabilityCluster (its
//     record, subscriptions and seqs), but the messages it had not
//     received stay behind and are lost: the resume says so, with
//     RESUMED_WITH_GAP and Welcome.lost naming the range, and later
//     messages are numbered after it. A client id taken over from such a
//     session likewise reports them as TakeOver.dropped. Never silently:
//     while the node holding the session lives, it stores the exact last
//     seq of the log as it lets the session go (P.seen.horizon_<id>);
//     before, it stores a horizon ahead of its appends, 1024 seqs at a
//     time (the next once half are used), and a message goes out to its
//     client, or its publisher is told it was delivered, only once the
//     horizon covers it. After the node's death, the lost range reaches
//     that horizon: up to 1024 seqs more than were used.
//   - Idempotency keys and receive marks are kept in the node's memory: a
//     message is handled once per node. A client message that a node
//     handled but had not acknowledged when the session moved (the node
//     died, or the ack was on its way) is handled again where the client
//     re-sends it, and a Publish retried on another node with the same
//     key may be delivered twice. Use DurabilityCluster where a duplicate
//     across nodes is not acceptable.
//   - What is per session, not per message, stays in JetStream as in
//     DurabilityCluster: records and client ids (so a session resumes on
//     another node at all, and a client id's newest session wins across
//     nodes), the adoption fence, and messages parked for a session or
//     client id that no node holds (delivered, in order, by the next
//     holder).
//   - What it costs: nothing per message on the node holding the session
//     but its memory; one JetStream write per 512 messages per session
//     (the horizon), and one more as a session leaves a node. While a
//     node cannot reach NATS, its sessions go on until their horizon is
//     used up; then their streams end with UNAVAILABLE, as in
//     DurabilityCluster.
//
// The two modes must not be mixed on one prefix: a node of one reads the
// other's logs as empty (or not at all).
//
// # Adoption
//
// A node resuming a session that another node holds, or held before it
// died, adopts it, and adoption is fenced ([broker.Fencer]): the node
// first claims the session on P.seen.adopt_<id>, by a compare-and-set on
// the subject's last message, and releases the claim once it holds the
// session (or gave up). While a claim stands, another node's claim fails
// with [broker.ErrFenced], before that node has written anything of the
// session (it has not even evicted the holder), and its server refuses
// the resume with a retryable UNAVAILABLE: of two nodes adopting one
// session at once, exactly one does, and the client's retry then resumes
// it where it is. A node that dies holding a claim leaves it to lapse.
//
// # Failures
//
// A call that fails because NATS or JetStream is unreachable or not ready
// returns an error matching [broker.ErrUnavailable] (errors.Is): the
// condition is transient, the call may succeed later on this node or
// another, and a server answers it with a retryable UNAVAILABLE. These are
// NATS unreachable (reconnecting: "NATS is unreachable"), a request to
// NATS or JetStream that timed out or found no responders, JetStream
// without a leader or quorum (503), streams not created yet (a JetStream
// leader election at Start), and a holder that died (below). Other
// errors (a bad address, a corrupt record, a log seq out of order) are not
// transient.
//
// When NATS is unreachable the broker reports it through
// [Broker.NotifyHealth] (a server then reports NOT_SERVING) and every call
// that needs NATS fails at once with such an error, without waiting for
// Timeout: publishes are not buffered while disconnected (see
// [ConnectOptions]; nats.go reports "outbound buffer limit exceeded", which
// the broker's error explains), so nothing stale lands later, and a caller
// can tell its client to retry instead of cutting its stream. Trim and
// Read of a log the node writes keep working (they need only its copy),
// Unbind releases the address but reports the log flush it could not do,
// and Bind succeeds, delivering what was parked after the reconnect. Connected sessions stay. The connection reconnects by itself
// (see [ConnectOptions]).
//
// After a reconnect the node recreates the streams if the NATS server lost
// them, checks (before delivering to its sessions again: meanwhile
// publishers park) which of its sessions were taken over by another node,
// releases those, and delivers what was parked for the ones it still
// holds. The streams are created under the broker's own lock, and the
// handles on them change only when a creation succeeds: during a JetStream
// leader election the creation fails and is retried, the calls that need
// JetStream fail with broker.ErrUnavailable until it has a leader, and
// nothing runs on a missing handle. An append that failed is written again
// before the session's next message goes out.
//
// A session can move to another node while its node is cut off: when no
// node answers its eviction, the node resuming it notes so on
// P.seen.move_<id> and asks again, before it reads the log (so that the
// old node, back, learns it even before the session's record names the
// new node), and reads the log without what the old node queued but could
// not store. The old node, back, releases the
// session and hands those messages on instead of writing them into the log
// the new holder writes: each goes to the session's subject as a "handoff"
// request, and the holder queues it to the session (a server's Receiver
// implements [broker.SessionReceiver]) under a new seq, behind what it
// has. When no node holds the session, one addressed to the session is
// parked and others are offered again, with a backoff up to 5s, while the
// session's record stands. A message that cannot reach it (the session
// ended, the node closed first) is lost: logged at error level and counted
// in tether_nats_broker_lost_total, never silently. Entries that a stale
// holder (a node of an earlier version) wrote into a log after the new
// holder read it, the new holder removes on its first append there and
// hands on likewise, so that its own appends go on in order.
//
// A delivery that a session refused because its log append failed is
// answered as not stored (the publisher retries), never as absent (the
// publisher would park it and be told it was delivered). A drain keeps
// what it delivered parked until the sessions' logs hold it.
//
// A Publish (or Evict) whose target another node holds waits for that
// node's answer at most Timeout, but every Heartbeat (default 1s) it asks
// the node the records name as the holder on its liveness subject: when
// NATS has no subscriber for it (the node's connection closed) or nobody
// answers within Heartbeat (the node hangs), the call fails at once with
// an error matching broker.ErrUnavailable that says the message may or may
// not have arrived: retry it with an idempotency key. A publish to an
// address no node holds is parked, as before, without waiting.
//
// Every background goroutine (delivery, answers, log trimming, the checks
// after a reconnect) recovers from a panic: it is logged at error level
// with its stack and counted in tether_nats_broker_panics_total, which the
// broker exports as a [prometheus.Collector] (register it with the
// server's registerer) with tether_nats_broker_lost_total.
package nats

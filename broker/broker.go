package broker

import (
	"context"
	"errors"
	"time"
)

// Kind says what an [Address] names.
type Kind uint8

// The address kinds.
const (
	// KindTopic addresses every session subscribed to a topic.
	KindTopic Kind = iota + 1
	// KindSession addresses one session by id.
	KindSession
	// KindClient addresses the live session of a client id.
	KindClient
)

// String returns "topic", "session" or "client".
func (k Kind) String() string {
	switch k {
	case KindTopic:
		return "topic"
	case KindSession:
		return "session"
	case KindClient:
		return "client"
	}
	return "unknown"
}

// Address is where a message goes: a topic, a session id or a client id.
type Address struct {
	// Kind says what Name is.
	Kind Kind
	// Name is the topic, session id or client id.
	Name string
}

// Topic returns the address of a topic's subscribers.
func Topic(name string) Address { return Address{Kind: KindTopic, Name: name} }

// Session returns the address of one session.
func Session(id string) Address { return Address{Kind: KindSession, Name: id} }

// Client returns the address of a client id's live session.
func Client(id string) Address { return Address{Kind: KindClient, Name: id} }

// Message is a business message on its way to sessions. A Message is
// immutable once handed to a Broker: implementations and receivers may share
// it between goroutines and sessions.
type Message struct {
	// Target is where the message goes.
	Target Address
	// Payload is opaque to tether.
	Payload []byte
	// ContentType and Headers are passed through.
	ContentType string
	Headers     map[string]string
	// CorrelationID links a request and its reply.
	CorrelationID string
	// SourceSession and SourceClient name the sending session, if any.
	SourceSession string
	SourceClient  string
	// PublishedAt is when the first server accepted the message.
	PublishedAt time.Time
	// DedupeKey is the sender's idempotency key in its scope, or empty.
	// A receiving session drops a message whose DedupeKey it received
	// within the dedupe window: the re-send of a message whose first
	// delivery succeeded although its sender was told it failed (a node
	// died before answering) reaches the application once.
	DedupeKey string
	// Encoded, when not nil, is the server's encoding of the message for
	// its clients, all but the per-session seq (a tether.v1.ServerMessage
	// without seq): the node that fans a message out to several sessions
	// sets it once, before the message reaches any of them, and their
	// writers send those bytes. Brokers neither set nor carry it.
	Encoded []byte
}

// Receiver takes the messages a Broker routes to this node. Deliver must not
// block for long: it queues the message to the node's local sessions and
// returns how many it reached.
type Receiver interface {
	// Deliver hands m to the node's sessions behind m.Target and returns
	// how many it reached. It returns ErrFull, having queued m nowhere,
	// when m has one recipient (a session or client id) whose outbound
	// log is full and refuses more (the server's BACKPRESSURE overflow
	// policy); a topic message is never refused that way.
	Deliver(m *Message) (int, error)
	// Evict acts on an [Eviction] another node sent: it releases the
	// session e.Session (which now lives on e.Node), or ends the node's
	// other sessions of client id e.Client. It returns
	// [ErrForeignClient] when a session of e.Client belongs to another
	// principal than e.Principal, and nothing is ended then. A shared
	// broker calls it; the memory broker never does.
	Evict(e Eviction) error
}

// SessionReceiver is implemented by a [Receiver] that can queue a message to
// one of the node's sessions whatever the message's Target (a topic's
// message to one of its subscribers, say). A shared broker hands on that
// way the messages a node queued to a session but could not store before
// the session moved to another node: they are queued again at the new
// holder, as new messages.
type SessionReceiver interface {
	// DeliverSession queues m to session id if the node holds it, as
	// Deliver would, and returns 1; 0 when the node does not hold it or it
	// ended. It returns ErrFull as Deliver does.
	DeliverSession(id string, m *Message) (int, error)
}

// Quiescer is implemented by a [Receiver] whose Evict of a session may
// leave work of that session on its way: a server's messages in its broker
// pipeline, whose keys it records once each ends. A shared broker calls
// Quiesce after Evict, off its delivery goroutines, and answers the
// eviction (having stored what that work recorded) once Quiesce returned:
// the node taking the session over checks those keys.
type Quiescer interface {
	// Quiesce waits until the work session id had on its way when it was
	// evicted has ended, or ctx ends.
	Quiesce(ctx context.Context, id string)
}

// Eviction asks the nodes of a shared broker to let go of a session or a
// client id, so that the newest stream wins across nodes as it does on
// one.
type Eviction struct {
	// Session, when set, names a session that node Node is resuming. Its
	// holder, if any, ends the session's stream (the client was told to go
	// away), stops writing to its log and forgets it, without deleting its
	// log or record: the session lives on at Node.
	Session string
	// Client, when set, names a client id that the new session By, at
	// node Node and of principal Principal, took over. Holders end their
	// sessions of that client id for good, keeping their logs for By to
	// inherit their messages from (see [SessionRecord].Heir).
	Client string
	// Principal is the principal of the session taking over Client.
	Principal string
	// By is the id of the session taking over Client.
	By string
	// Node is the node that takes over.
	Node string
}

// ErrForeignClient reports that a client id is held by a session of another
// principal, so a new session may not take it over.
var ErrForeignClient = errors.New("tether/broker: the client id belongs to a session of another principal")

// Entry is one message in a session's outbound log.
type Entry struct {
	// Seq is the session's outbound sequence number for this message.
	Seq uint64
	// Message is the message itself.
	Message *Message
}

// Appended reports the result of [Log.Append].
type Appended struct {
	// Dropped is the number of oldest entries evicted to stay within the
	// capacity; they are lost for good.
	Dropped int
	// Len is the log's length after the append.
	Len int
}

// SessionRecord is what the cluster knows about a session, enough to
// validate a resume on any node.
type SessionRecord struct {
	// ID is the session id.
	ID string
	// ClientID is the client id the session was opened for.
	ClientID string
	// Principal is the authenticated identity the session is bound to; a
	// resume by anyone else is refused.
	Principal string
	// TokenHash is a hash of the current resume token; the token itself is
	// never stored.
	TokenHash []byte
	// HeldTokenHash is a hash of the resume token the client last
	// presented, which stays valid beside the current one until the client
	// presents the current one: a client whose Welcome was lost (its
	// stream broke right after a resume) still holds the older token.
	HeldTokenHash []byte
	// Node is the server id currently (or last) holding the session.
	Node string
	// Topics are the session's subscriptions.
	Topics []string
	// Closed marks a session ended for good; it can no longer be resumed.
	Closed bool
	// Expires is when a detached session's resume window ends; zero while a
	// stream holds it.
	Expires time.Time

	// The fields below let another node adopt the session when it is
	// resumed there (see [Broker.Shared]). The sequence numbers are as of
	// the last PutSession; the adopting node reconciles them with the
	// session's log and with what the client reports.

	// Metadata is the client's metadata from Hello.
	Metadata map[string]string
	// Created is when the session was opened.
	Created time.Time
	// Interval is the granted heartbeat interval.
	Interval time.Duration
	// SentSeq is the highest outbound seq assigned.
	SentSeq uint64
	// AckedSeq is the highest outbound seq the client acknowledged.
	AckedSeq uint64
	// ReceivedSeq is the highest client seq the session received.
	ReceivedSeq uint64
	// Heir, on a closed record, names the session that took over the
	// client id and may still inherit this session's messages: the log
	// was kept for it. It is empty once they were inherited, and on any
	// other record.
	Heir string `json:",omitempty"`
}

// ErrFull is returned by [Receiver.Deliver], and so by [Broker.Publish],
// when a message for one session (a session or client id) found that
// session's outbound log full: it was not queued. The sender should retry
// later; a server answers it with gRPC RESOURCE_EXHAUSTED. A shared broker
// does not park such a message: the session is held, just full.
var ErrFull = errors.New("tether/broker: the session's outbound log is full")

// ErrClosed is returned by every method of a Broker after Close.
var ErrClosed = errors.New("tether/broker: closed")

// ErrUnavailable is matched (with errors.Is) by the errors of a broker
// call that failed because the service behind the broker is unreachable or
// not ready (NATS disconnected, JetStream electing a leader, the node
// holding an address not answering): the condition is transient and the
// same call may succeed later, on this node or another. The error itself
// says what failed; whether the call had an effect is as uncertain as for
// any failed call (a Publish may have reached its target: retry it with an
// idempotency key). A server answers such failures with gRPC UNAVAILABLE,
// a retryable code.
var ErrUnavailable = errors.New("tether/broker: unavailable")

// Broker routes messages between sessions on one or many server nodes and
// keeps what a session needs to be resumed. See the package documentation
// for each method's promise. Implementations are safe for concurrent use.
type Broker interface {
	// Start attaches the local node: messages routed to addresses the node
	// has bound are handed to r. It is called once, before anything else.
	Start(ctx context.Context, node string, r Receiver) error
	// Bind declares that this node has a session behind addr; Unbind
	// withdraws it. Binds are counted: a topic bound twice needs two
	// Unbinds.
	Bind(ctx context.Context, addr Address) error
	// Unbind withdraws one Bind of addr; with none left it does nothing.
	Unbind(ctx context.Context, addr Address) error
	// Publish routes m to every node that bound m.Target and returns how
	// many sessions it reached, as far as the broker can tell.
	Publish(ctx context.Context, m *Message) (int, error)

	// Seen records key in scope and reports whether it was already
	// recorded within window: the idempotency check.
	Seen(ctx context.Context, scope, key string, window time.Duration) (bool, error)
	// Forget withdraws key from scope, so the next Seen for it reports
	// false: for a message whose delivery failed after Seen recorded it.
	// Forgetting an unknown key is not an error.
	Forget(ctx context.Context, scope, key string) error
	// Recorded reports whether Seen recorded key in scope and its window
	// has not ended, without recording anything: the check a shared
	// broker's node makes before delivering, so that it records the key
	// (with Seen) only once the delivery succeeded, and a node that dies
	// in between leaves no key behind.
	Recorded(ctx context.Context, scope, key string) (bool, error)

	// Log returns the outbound log of a session.
	Log(sessionID string) Log

	// Shared reports whether other nodes share the broker's routes, logs
	// and records, so that a session may resume on any of them.
	Shared() bool
	// Evict sends e to the other nodes and waits, within ctx, for the
	// holder of e.Session or e.Client to act on it (see [Receiver.Evict]).
	// It returns ErrForeignClient when that holder refused. Without other
	// nodes it does nothing.
	Evict(ctx context.Context, e Eviction) error

	// PutSession stores or replaces a session record; GetSession reads it
	// (ok false when unknown); DeleteSession forgets it.
	PutSession(ctx context.Context, rec SessionRecord) error
	// GetSession returns a copy of the record of session id, or ok false
	// when there is none.
	GetSession(ctx context.Context, id string) (rec SessionRecord, ok bool, err error)
	// DeleteSession forgets the record of session id, if any.
	DeleteSession(ctx context.Context, id string) error

	// Close releases the broker. Pending calls return ErrClosed.
	Close() error
}

// Log is a session's bounded outbound log: the messages sent or queued to
// the session and not yet acknowledged, in seq order.
type Log interface {
	// Append adds an entry whose seq is greater than every entry's in the
	// log. When the log then holds more than capacity entries, the oldest
	// are dropped.
	Append(ctx context.Context, e Entry, capacity int) (Appended, error)
	// Trim removes every entry with seq ≤ upTo (an acknowledgement).
	Trim(ctx context.Context, upTo uint64) error
	// Read calls fn for each entry with seq ≥ from, in order, until fn
	// returns false.
	Read(ctx context.Context, from uint64, fn func(Entry) bool) error
	// Delete removes the whole log.
	Delete(ctx context.Context) error
}

// ClientSessions is implemented by a shared broker that knows the latest
// session of a client id from its records: the node of a session that
// takes over a client id whose holder has died learns from it which
// session's messages to inherit.
type ClientSessions interface {
	// ClientSession returns the id of the latest session stored (with
	// PutSession, not closed) for clientID; ok is false when there is none.
	ClientSession(ctx context.Context, clientID string) (id string, ok bool, err error)
}

// Syncer is implemented by a [Log] whose appends become durable only after
// Append returns: Sync returns once every entry appended so far, to any
// log of the broker, is stored. A server sends a message to its client
// only once it is, so that whatever a client received survives the death
// of its node.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Fencer is implemented by a shared broker that fences the adoption of a
// session (see [Broker.Shared]): of nodes that adopt one session at the
// same time, exactly one does. A node claims the session before it writes
// anything of it (before it evicts the holder), and releases the claim
// once it holds the session or gave up; while a claim stands, other
// claims fail. A claim lapses by itself after a while (a node that died
// adopting leaves it), and the node that claimed learns it from Release.
type Fencer interface {
	// Claim claims session id for node and returns the claim. It returns
	// an error matching ErrFenced while another claim on id stands.
	Claim(ctx context.Context, id, node string) (uint64, error)
	// Release ends claim, which Claim returned for session id. It returns
	// an error matching ErrFenced when the claim lapsed and another node
	// claimed the session since: that node adopts it.
	Release(ctx context.Context, id string, claim uint64) error
}

// ErrFenced reports that another node is adopting the session (see
// [Fencer]). It is transient: the resume may be retried, and then resumes
// the session where that node holds it.
var ErrFenced = errors.New("tether/broker: another node is taking the session over at this moment")

// Preparer is implemented by a [Log] whose first append on a node may have
// to read the log from a shared store (the log of a session that moved
// here from another node). Prepare does that read, so that a server can
// call it before it appends under a lock: a log prepared for next appends
// seqs from next on without I/O. Preparing a log the node writes already
// does nothing.
type Preparer interface {
	Prepare(ctx context.Context, next uint64) error
}

// Bounded is implemented by a [Log] that a shared broker keeps on the node
// that writes it only (package nats in its node durability mode): its
// entries live in that node's memory and are lost with it, and another
// node reads the log as empty. LastSeq returns the highest seq the log may
// hold: exact once its writer released the session (so, on an adopting
// node, once [Broker.Evict] returned), otherwise an upper bound its writer
// stored ahead of its appends. A server that adopts the session counts the
// seqs up to it that the client has not received as lost and says so in
// the resume (RESUMED_WITH_GAP), instead of numbering new messages with
// them.
type Bounded interface {
	LastSeq(ctx context.Context) (uint64, error)
}

// HealthNotifier is implemented by brokers that depend on a remote service:
// NotifyHealth calls f at once with the current state, and again on every
// change, with nil when the broker works and with the reason when it does
// not. A server reports NOT_SERVING while the broker does not work.
type HealthNotifier interface {
	NotifyHealth(f func(err error))
}

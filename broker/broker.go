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
}

// Receiver takes the messages a Broker routes to this node. Deliver must not
// block for long: it queues the message to the node's local sessions and
// returns how many it reached.
type Receiver interface {
	// Deliver hands m to the node's sessions behind m.Target and returns
	// how many it reached.
	Deliver(m *Message) int
}

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
	// Node is the server id currently (or last) holding the session.
	Node string
	// Topics are the session's subscriptions.
	Topics []string
	// Closed marks a session ended for good; it can no longer be resumed.
	Closed bool
	// Expires is when a detached session's resume window ends; zero while a
	// stream holds it.
	Expires time.Time
}

// ErrClosed is returned by every method of a Broker after Close.
var ErrClosed = errors.New("broker: closed")

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

	// Log returns the outbound log of a session.
	Log(sessionID string) Log

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

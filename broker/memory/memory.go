package memory

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/broker"
)

var (
	errStarted     = errors.New("memory: broker already started")
	errNilReceiver = errors.New("memory: nil receiver")
)

// Broker is an in-memory [broker.Broker] for one process. It is safe for
// concurrent use. The zero value is not usable: call [New].
//
// A call racing with Close either completes or returns [broker.ErrClosed].
type Broker struct {
	closed atomic.Bool

	// bindMu serializes Start, Bind, Unbind and Close's clearing of the
	// routing table. bound maps every address with at least one bind to
	// its count, an *int read and written only under bindMu, so that
	// Publish finds bound addresses without taking a lock.
	bindMu   sync.Mutex
	bound    sync.Map
	receiver atomic.Pointer[broker.Receiver]

	dedupe  dedupe
	logs    logStore
	records records
}

var _ broker.Broker = (*Broker)(nil)

// New returns an empty broker, ready for [Broker.Start].
func New() *Broker {
	return &Broker{
		dedupe:  newDedupe(time.Now()),
		logs:    logStore{m: make(map[string]*sessionLog)},
		records: records{m: make(map[string]broker.SessionRecord)},
	}
}

// Start attaches r as the node's [broker.Receiver]. The node name is not
// needed by a single-process broker. Start fails if r is nil or if the broker
// was already started.
func (b *Broker) Start(_ context.Context, _ string, r broker.Receiver) error {
	if r == nil {
		return errNilReceiver
	}
	b.bindMu.Lock()
	defer b.bindMu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.receiver.CompareAndSwap(nil, &r) {
		return errStarted
	}
	return nil
}

// Bind adds one bind of addr.
func (b *Broker) Bind(_ context.Context, addr broker.Address) error {
	b.bindMu.Lock()
	defer b.bindMu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if v, ok := b.bound.Load(addr); ok {
		*v.(*int)++
	} else {
		n := 1
		b.bound.Store(addr, &n)
	}
	return nil
}

// Unbind removes one bind of addr, if it has any.
func (b *Broker) Unbind(_ context.Context, addr broker.Address) error {
	b.bindMu.Lock()
	defer b.bindMu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	v, ok := b.bound.Load(addr)
	if !ok {
		return nil
	}
	n := v.(*int)
	*n--
	if *n == 0 {
		b.bound.Delete(addr)
	}
	return nil
}

// Publish calls the Receiver's Deliver with m, on the caller's goroutine,
// when m.Target has at least one bind, and returns what Deliver returned.
// Otherwise it returns 0.
func (b *Broker) Publish(_ context.Context, m *broker.Message) (int, error) {
	if b.closed.Load() {
		return 0, broker.ErrClosed
	}
	if _, ok := b.bound.Load(m.Target); !ok {
		return 0, nil
	}
	r := b.receiver.Load()
	if r == nil {
		return 0, nil
	}
	return (*r).Deliver(m)
}

// Seen records key in scope for window and reports whether it was already
// recorded within the window of the call that recorded it.
func (b *Broker) Seen(_ context.Context, scope, key string, window time.Duration) (bool, error) {
	b.dedupe.mu.Lock()
	defer b.dedupe.mu.Unlock()
	if b.closed.Load() {
		return false, broker.ErrClosed
	}
	return b.dedupe.seenLocked(scope, key, window), nil
}

// Recorded reports whether key is recorded in scope, without recording it.
func (b *Broker) Recorded(_ context.Context, scope, key string) (bool, error) {
	b.dedupe.mu.Lock()
	defer b.dedupe.mu.Unlock()
	if b.closed.Load() {
		return false, broker.ErrClosed
	}
	return b.dedupe.recordedLocked(scope, key), nil
}

// Forget withdraws key from scope.
func (b *Broker) Forget(_ context.Context, scope, key string) error {
	b.dedupe.mu.Lock()
	defer b.dedupe.mu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	b.dedupe.forgetLocked(scope, key)
	return nil
}

// Log returns a handle to the outbound log of session sessionID. The handle
// is safe for concurrent use; keep it rather than calling Log per message.
func (b *Broker) Log(sessionID string) broker.Log {
	return &logHandle{b: b, id: sessionID}
}

// Shared reports false: a memory broker serves one node.
func (b *Broker) Shared() bool { return false }

// Evict does nothing: no other node shares a memory broker.
func (b *Broker) Evict(context.Context, broker.Eviction) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	return nil
}

// PutSession stores a copy of rec.
func (b *Broker) PutSession(_ context.Context, rec broker.SessionRecord) error {
	rec = cloneRecord(rec)
	b.records.mu.Lock()
	defer b.records.mu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	b.records.m[rec.ID] = rec
	return nil
}

// GetSession returns a copy of the record of session id.
func (b *Broker) GetSession(_ context.Context, id string) (broker.SessionRecord, bool, error) {
	b.records.mu.RLock()
	defer b.records.mu.RUnlock()
	if b.closed.Load() {
		return broker.SessionRecord{}, false, broker.ErrClosed
	}
	rec, ok := b.records.m[id]
	return cloneRecord(rec), ok, nil
}

// DeleteSession forgets the record of session id.
func (b *Broker) DeleteSession(_ context.Context, id string) error {
	b.records.mu.Lock()
	defer b.records.mu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	delete(b.records.m, id)
	return nil
}

// Close drops everything the broker holds. Every later call, Close
// included, returns [broker.ErrClosed].
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return broker.ErrClosed
	}
	b.bindMu.Lock()
	b.bound.Clear()
	b.receiver.Store(nil)
	b.bindMu.Unlock()

	b.dedupe.mu.Lock()
	b.dedupe.clearLocked()
	b.dedupe.mu.Unlock()

	b.logs.close()

	b.records.mu.Lock()
	b.records.m = nil
	b.records.mu.Unlock()
	return nil
}

// records holds the session records by id.
type records struct {
	mu sync.RWMutex
	m  map[string]broker.SessionRecord
}

// cloneRecord returns rec with slices of its own.
func cloneRecord(rec broker.SessionRecord) broker.SessionRecord {
	rec.TokenHash = bytes.Clone(rec.TokenHash)
	rec.Topics = slices.Clone(rec.Topics)
	rec.Metadata = maps.Clone(rec.Metadata)
	return rec
}

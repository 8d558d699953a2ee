package memory

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/tetherhq/tether/broker"
)

const (
	// minRing is the smallest ring buffer a log allocates.
	minRing = 8
	// keepRing is the size below which Trim does not shrink a ring, so
	// that a session trading bursts of messages for acks does not
	// reallocate on every burst.
	keepRing = 64
	// readChunk is how many entries Read copies out per lock.
	readChunk = 64
)

// logStore holds the sessions' logs by session id. A log is in the map
// exactly as long as it is not marked deleted.
type logStore struct {
	mu sync.Mutex
	m  map[string]*sessionLog
}

// get returns the log of session id, creating it if create is set; it
// returns nil when there is none.
func (s *logStore) get(id string, create bool, closed *atomic.Bool) (*sessionLog, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if closed.Load() {
		return nil, broker.ErrClosed
	}
	l := s.m[id]
	if l == nil && create {
		l = new(sessionLog)
		s.m[id] = l
	}
	return l, nil
}

// remove takes the log of session id out of the store and marks it deleted.
func (s *logStore) remove(id string, closed *atomic.Bool) error {
	s.mu.Lock()
	if closed.Load() {
		s.mu.Unlock()
		return broker.ErrClosed
	}
	l := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if l != nil {
		l.delete()
	}
	return nil
}

// close marks every log deleted and drops the store.
func (s *logStore) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.m {
		l.delete()
	}
	s.m = nil
}

// sessionLog is one session's log: a ring buffer of entries in seq order.
type sessionLog struct {
	mu sync.Mutex
	// deleted is set once the log has left the store; a handle that finds
	// it set looks the session up again.
	deleted bool
	// buf's length is zero or a power of two. The entries are
	// buf[head], buf[head+1], … (modulo len(buf)), n of them; the other
	// slots are zero.
	buf  []broker.Entry
	head int
	n    int
}

func (l *sessionLog) delete() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deleted = true
	l.buf, l.head, l.n = nil, 0, 0
}

// atLocked returns the i-th entry, counting from the oldest.
func (l *sessionLog) atLocked(i int) *broker.Entry {
	return &l.buf[(l.head+i)&(len(l.buf)-1)]
}

func (l *sessionLog) appendLocked(e broker.Entry, capacity int) (broker.Appended, error) {
	if capacity < 1 {
		return broker.Appended{}, fmt.Errorf("memory: log capacity %d is below 1", capacity)
	}
	if l.n > 0 {
		if last := l.atLocked(l.n - 1).Seq; e.Seq <= last {
			return broker.Appended{}, fmt.Errorf("memory: append of seq %d after seq %d", e.Seq, last)
		}
	}
	dropped := 0
	for l.n >= capacity {
		l.popLocked()
		dropped++
	}
	if l.n == len(l.buf) {
		l.resizeLocked(max(minRing, 2*len(l.buf)))
	}
	*l.atLocked(l.n) = e
	l.n++
	return broker.Appended{Dropped: dropped, Len: l.n}, nil
}

// popLocked drops the oldest entry.
func (l *sessionLog) popLocked() {
	*l.atLocked(0) = broker.Entry{}
	l.head = (l.head + 1) & (len(l.buf) - 1)
	l.n--
}

func (l *sessionLog) trimLocked(upTo uint64) {
	for l.n > 0 && l.atLocked(0).Seq <= upTo {
		l.popLocked()
	}
	// Shrink until the entries fill more than a quarter of the ring, so
	// that they can double again before it has to grow.
	size := len(l.buf)
	for size > keepRing && l.n <= size/4 {
		size /= 2
	}
	if size < len(l.buf) {
		l.resizeLocked(size)
	}
}

// resizeLocked moves the entries to a new ring of the given size, a power
// of two not below l.n.
func (l *sessionLog) resizeLocked(size int) {
	buf := make([]broker.Entry, size)
	if l.n > 0 {
		end := l.head + l.n
		k := copy(buf, l.buf[l.head:min(end, len(l.buf))])
		copy(buf[k:], l.buf[:max(0, end-len(l.buf))])
	}
	l.buf, l.head = buf, 0
}

// copyFromLocked copies into dst the first entries with seq ≥ from and
// returns how many it copied.
func (l *sessionLog) copyFromLocked(from uint64, dst []broker.Entry) int {
	i := sort.Search(l.n, func(i int) bool { return l.atLocked(i).Seq >= from })
	k := 0
	for ; i < l.n && k < len(dst); i, k = i+1, k+1 {
		dst[k] = *l.atLocked(i)
	}
	return k
}

// logHandle is the [broker.Log] of one session. It caches the session's
// log and looks it up again when the log was deleted.
type logHandle struct {
	b   *Broker
	id  string
	cur atomic.Pointer[sessionLog]
}

// lock returns the session's log, locked, creating it if create is set; it
// returns nil when there is none.
func (h *logHandle) lock(create bool) (*sessionLog, error) {
	for {
		l := h.cur.Load()
		if l == nil {
			var err error
			l, err = h.b.logs.get(h.id, create, &h.b.closed)
			if l == nil {
				return nil, err
			}
			h.cur.Store(l)
		}
		l.mu.Lock()
		if !l.deleted {
			return l, nil
		}
		l.mu.Unlock()
		h.cur.CompareAndSwap(l, nil)
	}
}

// Append adds e, dropping the oldest entries beyond capacity.
func (h *logHandle) Append(_ context.Context, e broker.Entry, capacity int) (broker.Appended, error) {
	if h.b.closed.Load() {
		return broker.Appended{}, broker.ErrClosed
	}
	l, err := h.lock(true)
	if err != nil {
		return broker.Appended{}, err
	}
	defer l.mu.Unlock()
	return l.appendLocked(e, capacity)
}

// Trim removes the entries with seq ≤ upTo.
func (h *logHandle) Trim(_ context.Context, upTo uint64) error {
	if h.b.closed.Load() {
		return broker.ErrClosed
	}
	l, err := h.lock(false)
	if l == nil {
		return err
	}
	defer l.mu.Unlock()
	l.trimLocked(upTo)
	return nil
}

// Read calls fn for the entries with seq ≥ from, in order, until fn returns
// false. It copies the entries out in chunks and calls fn with no lock held.
func (h *logHandle) Read(_ context.Context, from uint64, fn func(broker.Entry) bool) error {
	if h.b.closed.Load() {
		return broker.ErrClosed
	}
	var chunk [readChunk]broker.Entry
	for {
		l, err := h.lock(false)
		if l == nil {
			return err
		}
		n := l.copyFromLocked(from, chunk[:])
		l.mu.Unlock()
		for _, e := range chunk[:n] {
			if !fn(e) {
				return nil
			}
		}
		if n < len(chunk) || chunk[n-1].Seq == math.MaxUint64 {
			return nil
		}
		from = chunk[n-1].Seq + 1
	}
}

// Delete removes the session's log.
func (h *logHandle) Delete(context.Context) error {
	if h.b.closed.Load() {
		return broker.ErrClosed
	}
	return h.b.logs.remove(h.id, &h.b.closed)
}

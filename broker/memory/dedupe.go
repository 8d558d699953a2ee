package memory

import (
	"math"
	"sync"
	"time"
)

// dedupe remembers (scope, key) pairs for a window each. Times are durations
// since epoch, read from the monotonic clock.
type dedupe struct {
	mu    sync.Mutex
	epoch time.Time
	// expires maps each remembered pair to the end of its window.
	expires map[dedupeKey]time.Duration
	// queue holds the pairs in recording order, from queue[head] on; the
	// entries before head are zero.
	queue []dedupeEntry
	head  int
}

type dedupeKey struct{ scope, key string }

type dedupeEntry struct {
	key     dedupeKey
	expires time.Duration
}

func newDedupe(epoch time.Time) dedupe {
	return dedupe{epoch: epoch, expires: make(map[dedupeKey]time.Duration)}
}

// seenLocked reports whether (scope, key) is remembered and, if not,
// remembers it for window.
func (d *dedupe) seenLocked(scope, key string, window time.Duration) bool {
	if window <= 0 {
		return false
	}
	now := time.Since(d.epoch)
	d.sweepLocked(now)
	k := dedupeKey{scope, key}
	if end, ok := d.expires[k]; ok && now < end {
		return true
	}
	end := time.Duration(math.MaxInt64)
	if window < end-now {
		end = now + window
	}
	d.expires[k] = end
	d.queue = append(d.queue, dedupeEntry{key: k, expires: end})
	return false
}

// recordedLocked reports whether (scope, key) is remembered.
func (d *dedupe) recordedLocked(scope, key string) bool {
	end, ok := d.expires[dedupeKey{scope, key}]
	return ok && time.Since(d.epoch) < end
}

// forgetLocked drops (scope, key); its queue entry no longer matches the
// map and is swept as a stale one.
func (d *dedupe) forgetLocked(scope, key string) {
	delete(d.expires, dedupeKey{scope, key})
}

// sweepLocked forgets the pairs at the front of the queue whose window ended
// at or before now, and compacts the queue once half of it is swept.
func (d *dedupe) sweepLocked(now time.Duration) {
	for d.head < len(d.queue) {
		e := &d.queue[d.head]
		if now < e.expires {
			break
		}
		// The pair may have been recorded again since; only its latest
		// recording is in the map.
		if d.expires[e.key] == e.expires {
			delete(d.expires, e.key)
		}
		*e = dedupeEntry{}
		d.head++
	}
	switch {
	case d.head == len(d.queue):
		d.queue, d.head = d.queue[:0], 0
	case d.head > 0 && d.head >= len(d.queue)/2:
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue, d.head = d.queue[:n], 0
	}
}

// clearLocked drops every pair.
func (d *dedupe) clearLocked() {
	d.expires, d.queue, d.head = nil, nil, 0
}

package server

import "time"

// recentKeys is how many dedupe keys of received messages a session keeps
// (see recent): at most about 50 KB for a session that receives many
// direct messages within the dedupe window, nothing for one that receives
// none.
const recentKeys = 512

// recent holds the dedupe keys (broker.Message.DedupeKey) of the direct
// messages most recently queued to a session, with when they were queued,
// so that a second copy within the dedupe window is dropped. A second copy
// comes from a sender that re-sent after being told, wrongly, that the
// first failed: a node died between delivering it and answering. Such a
// re-send follows within seconds, so the last recentKeys keys cover it.
// The ring is allocated with the first key, and keys older than the window
// leave it as new ones come: a session that receives none pays nothing.
type recent struct {
	at   map[string]time.Time
	ring []string // oldest at next once full
	next int
}

// has reports whether key was added within window before now.
func (r *recent) has(key string, now time.Time, window time.Duration) bool {
	at, ok := r.at[key]
	return ok && now.Sub(at) < window
}

// add adds key, queued at now.
func (r *recent) add(key string, now time.Time, window time.Duration) {
	r.expire(now, window)
	if r.at == nil {
		r.at = make(map[string]time.Time)
	}
	if _, ok := r.at[key]; !ok {
		if len(r.ring) < recentKeys {
			r.ring = append(r.ring, key)
		} else {
			delete(r.at, r.ring[r.next])
			r.ring[r.next] = key
			r.next = (r.next + 1) % recentKeys
		}
	}
	r.at[key] = now
}

// expire drops the oldest keys whose window has ended, and the ring and
// map with them once they are empty.
func (r *recent) expire(now time.Time, window time.Duration) {
	for len(r.ring) > 0 {
		oldest := r.ring[r.next%len(r.ring)]
		if now.Sub(r.at[oldest]) < window {
			return
		}
		delete(r.at, oldest)
		if len(r.ring) < recentKeys {
			r.ring = r.ring[1:]
		} else {
			// Full: make the ring a slice again, oldest first.
			r.ring = append(r.ring[r.next+1:], r.ring[:r.next]...)
			r.next = 0
		}
	}
	r.at, r.ring, r.next = nil, nil, 0
}

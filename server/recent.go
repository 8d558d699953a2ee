package server

import "time"

// recentHold is how long a session keeps every dedupe key of a received
// message (see recent), however many it receives, with a shared broker,
// and recentMax the most it keeps that long; past recentHold, and with a
// broker that is not shared, it keeps the last recentKeys of those within
// the dedupe window. A session receiving 1,000 messages a second holds
// recentMax keys (about 1 MB), the last 8 seconds of them; one receiving
// a message a second, 30; one receiving none, nothing. (A larger
// recentMax cost a relay on one node 15% of its rate, for its map.)
const (
	recentHold = 30 * time.Second
	recentMax  = 1 << 13
	recentKeys = 512
)

// recentWide is the most keys a session keeps for recentHold from the
// moment its server's broker failed or came back, and for recentHold
// after: recentMax would not do then. A log append that failed in the
// outage is written again once the broker is back (the message reaches its
// receiver), while its sender was told it failed and sends it again,
// behind the backlog every sender flushes at once: at 1,000 messages a
// second into one session, 10 s of it pushed out of recentMax the key
// that would have dropped the copy (the chaos suite's nats-down case).
const recentWide = 1 << 16

// keep is how long, and how many, keys a session keeps (see recent).
type keep struct {
	hold time.Duration
	max  int
}

// recent holds the dedupe keys (broker.Message.DedupeKey) of the direct
// messages most recently queued to a session, with when they were queued,
// so that a second copy within the dedupe window is dropped. A second copy
// comes from a sender that re-sent after being told, wrongly, that the
// first failed: a node died between delivering it and answering, which
// takes a shared broker. Such a re-send follows within seconds (the failed
// answer takes a liveness check, the re-send waits for the receiving
// session to be back), so there every key of the last recentHold is kept:
// a count alone would cover half a second of a busy receiver. With the
// memory broker no answer is wrong, and the count is what costs least (a
// small map). The queue is allocated with the first key,
// and keys leave it as they age: a session that receives none pays
// nothing.
type recent struct {
	at   map[string]time.Time
	q    []recentKey // oldest first, from head
	head int
}

// recentKey is a key as queued: when it was added.
type recentKey struct {
	key string
	at  time.Time
}

// has reports whether key was added within window before now.
func (r *recent) has(key string, now time.Time, window time.Duration) bool {
	at, ok := r.at[key]
	return ok && now.Sub(at) < window
}

// add adds key, queued at now, and keeps what is within window: every key
// younger than k.hold (recentHold, or 0), up to k.max, else the last
// recentKeys.
func (r *recent) add(key string, now time.Time, window time.Duration, k keep) {
	if r.at == nil {
		r.at = make(map[string]time.Time)
	}
	r.at[key] = now
	r.q = append(r.q, recentKey{key, now})
	r.expire(now, window, k)
}

// expire drops the oldest keys that are past the dedupe window, or past
// kp.hold beyond the last recentKeys, or beyond kp.max; and the memory
// with the last of them.
func (r *recent) expire(now time.Time, window time.Duration, kp keep) {
	for r.head < len(r.q) {
		k, n := r.q[r.head], len(r.q)-r.head
		age := now.Sub(k.at)
		if age < window && n <= kp.max && (age < kp.hold || n <= recentKeys) {
			break
		}
		if r.at[k.key].Equal(k.at) { // not added again since
			delete(r.at, k.key)
		}
		r.q[r.head] = recentKey{}
		r.head++
	}
	switch {
	case r.head == len(r.q):
		r.at, r.q, r.head = nil, nil, 0
	case r.head >= 1024 && r.head >= len(r.q)/2:
		r.q = append(r.q[:0:0], r.q[r.head:]...)
		r.head = 0
	}
}

// keep is what each session keeps of the keys it received (see recent):
// with a shared broker every key of the last recentHold, up to recentMax,
// or recentWide around a broker outage (see recentWide); else the last
// recentKeys.
func (srv *Server) keep(now time.Time) keep {
	if !srv.broker.Shared() {
		return keep{max: recentMax}
	}
	if now.Sub(time.Unix(0, srv.brokerEdge.Load())) < recentHold {
		return keep{hold: recentHold, max: recentWide}
	}
	return keep{hold: recentHold, max: recentMax}
}

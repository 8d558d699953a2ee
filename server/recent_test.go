package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
)

// seen is how enqueue uses r with a shared broker: has, and add when not.
func (r *recent) seen(key string, now time.Time, window time.Duration) bool {
	if r.has(key, now, window) {
		return true
	}
	r.add(key, now, window, keep{recentHold, recentMax})
	return false
}

func TestRecentWindowAndCapacity(t *testing.T) {
	t.Parallel()
	var r recent
	t0 := time.Unix(1000, 0)
	const w = 10 * time.Minute
	if r.seen("a", t0, w) {
		t.Fatal("a new key was seen")
	}
	if !r.seen("a", t0.Add(w-1), w) {
		t.Fatal("a repeat within the window was not seen")
	}
	if r.seen("a", t0.Add(2*w), w) {
		t.Fatal("a repeat after the window was seen")
	}
	// Within recentHold every key stays, however many came after it.
	t1 := t0.Add(2 * w)
	for i := range 4 * recentKeys {
		r.seen(fmt.Sprint(i), t1, w)
	}
	if !r.seen("a", t1.Add(recentHold-1), w) {
		t.Fatalf("a key %d newer ones followed within %v was dropped", 4*recentKeys, recentHold)
	}
	// Past recentHold, the last recentKeys stay.
	later := t1.Add(recentHold)
	r.expire(later, w, keep{recentHold, recentMax})
	if len(r.at) != recentKeys {
		t.Fatalf("past %v, holds %d keys; want the last %d", recentHold, len(r.at), recentKeys)
	}
	if r.seen("0", later, w) {
		t.Fatal("the oldest key was kept past recentHold beyond recentKeys")
	}
	if !r.seen(fmt.Sprint(4*recentKeys-2), later, w) {
		t.Fatal("one of the newest keys was lost")
	}
	// Never more than recentMax, even within recentHold.
	for i := range recentMax + 10 {
		r.add(fmt.Sprint("m", i), later, w, keep{recentHold, recentMax})
	}
	if n := len(r.q) - r.head; n > recentMax {
		t.Fatalf("queues %d keys; want at most %d", n, recentMax)
	}
	if r.has("m0", later, w) || !r.has(fmt.Sprint("m", recentMax+9), later, w) {
		t.Fatal("beyond recentMax, the oldest must go and the newest stay")
	}
	// Keys whose window ended leave, and the memory with the last of them.
	if r.seen("late", later.Add(2*w), w) || len(r.at) != 1 {
		t.Fatalf("after the window, holds %d keys; want only the new one", len(r.at))
	}
	r.expire(later.Add(4*w), w, keep{recentHold, recentMax})
	if r.at != nil || r.q != nil {
		t.Fatal("an empty queue kept its memory")
	}
}

// With the memory broker (hold 0) a session keeps the last recentKeys.
func TestRecentCountOnly(t *testing.T) {
	t.Parallel()
	var r recent
	t0 := time.Unix(1000, 0)
	for i := range 2 * recentKeys {
		r.add(fmt.Sprint(i), t0, time.Minute, keep{max: recentMax})
	}
	if len(r.at) != recentKeys || r.has("0", t0, time.Minute) || !r.has(fmt.Sprint(2*recentKeys-1), t0, time.Minute) {
		t.Fatalf("holds %d keys; want the last %d", len(r.at), recentKeys)
	}
}

// sharedStub is a broker that reports itself shared, for keep.
type sharedStub struct{ broker.Broker }

func (sharedStub) Shared() bool { return true }

// For recentHold after the broker failed or came back, a session keeps up
// to recentWide keys: a message whose append failed in the outage reaches
// its receiver once the broker is back, and its sender's copy, sent again
// behind every sender's backlog, must still meet its key.
func TestRecentWideAroundAnOutage(t *testing.T) {
	t.Parallel()
	srv := &Server{broker: sharedStub{}}
	t0 := time.Unix(5000, 0)
	if k := srv.keep(t0); k != (keep{recentHold, recentMax}) {
		t.Fatalf("no outage: keep %+v, want %v and %d keys", k, recentHold, recentMax)
	}
	srv.brokerEdge.Store(t0.UnixNano()) // the broker came back
	if k := srv.keep(t0.Add(recentHold - time.Second)); k != (keep{recentHold, recentWide}) {
		t.Fatalf("within %v of the outage: keep %+v, want %d keys", recentHold, k, recentWide)
	}
	if k := srv.keep(t0.Add(recentHold)); k.max != recentMax {
		t.Fatalf("%v after the outage: keep %+v, want %d keys again", recentHold, k, recentMax)
	}

	var r recent
	const w = 10 * time.Minute
	r.add("stored late", t0, w, srv.keep(t0))
	for i := range recentMax + 10 {
		r.add(fmt.Sprint(i), t0.Add(time.Second), w, srv.keep(t0.Add(time.Second)))
	}
	if !r.has("stored late", t0.Add(time.Second), w) {
		t.Fatalf("a key %d newer ones followed right after an outage was dropped", recentMax+10)
	}
	if memory := (&Server{broker: memory.New()}).keep(t0); memory != (keep{max: recentMax}) {
		t.Fatalf("memory broker: keep %+v, want only the count", memory)
	}
}

package server

import (
	"fmt"
	"testing"
	"time"
)

// seen is how enqueue uses r with a shared broker: has, and add when not.
func (r *recent) seen(key string, now time.Time, window time.Duration) bool {
	if r.has(key, now, window) {
		return true
	}
	r.add(key, now, window, recentHold)
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
	r.expire(later, w, recentHold)
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
		r.add(fmt.Sprint("m", i), later, w, recentHold)
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
	r.expire(later.Add(4*w), w, recentHold)
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
		r.add(fmt.Sprint(i), t0, time.Minute, 0)
	}
	if len(r.at) != recentKeys || r.has("0", t0, time.Minute) || !r.has(fmt.Sprint(2*recentKeys-1), t0, time.Minute) {
		t.Fatalf("holds %d keys; want the last %d", len(r.at), recentKeys)
	}
}

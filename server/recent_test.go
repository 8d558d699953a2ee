package server

import (
	"fmt"
	"testing"
	"time"
)

// seen is how enqueue uses r: has, and add when not.
func (r *recent) seen(key string, now time.Time, window time.Duration) bool {
	if r.has(key, now, window) {
		return true
	}
	r.add(key, now, window)
	return false
}

func TestRecentWindowAndCapacity(t *testing.T) {
	t.Parallel()
	var r recent
	t0 := time.Unix(1000, 0)
	const w = time.Minute
	if r.seen("a", t0, w) {
		t.Fatal("a new key was seen")
	}
	if !r.seen("a", t0.Add(w-1), w) {
		t.Fatal("a repeat within the window was not seen")
	}
	if r.seen("a", t0.Add(2*w), w) {
		t.Fatal("a repeat after the window was seen")
	}
	// The oldest keys leave once recentKeys newer ones came.
	for i := range recentKeys {
		r.seen(fmt.Sprint(i), t0.Add(2*w), w)
	}
	if len(r.at) != recentKeys || len(r.ring) != recentKeys {
		t.Fatalf("holds %d keys in a ring of %d; want %d", len(r.at), len(r.ring), recentKeys)
	}
	if r.seen("a", t0.Add(2*w), w) {
		t.Fatal("the oldest key was kept beyond the capacity")
	}
	if !r.seen(fmt.Sprint(recentKeys-1), t0.Add(2*w), w) {
		t.Fatal("the newest key was lost")
	}
	// Keys whose window ended leave as new ones come, and the memory with
	// the last of them.
	if r.seen("late", t0.Add(3*w), w) || len(r.at) != 1 || len(r.ring) != 1 {
		t.Fatalf("after the window, holds %d keys in a ring of %d; want only the new one", len(r.at), len(r.ring))
	}
	r.expire(t0.Add(5*w), w)
	if r.at != nil || r.ring != nil {
		t.Fatal("an empty ring kept its memory")
	}
}

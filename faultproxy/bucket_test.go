package faultproxy

import (
	"testing"
	"time"
)

// TestBucket checks the token bucket on a fake clock: bursts up to 20ms
// worth of bytes, and waits exactly as long as the refill needs.
func TestBucket(t *testing.T) {
	const rate = 1000 // bytes per second: a 20-byte bucket
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var b bucket
	for i, step := range []struct {
		now      time.Time
		rate, n  int
		wantK    int
		wantWait time.Duration
	}{
		{at(0), rate, 100, 20, 0},                   // starts full; pieces are at most 20 bytes
		{at(0), rate, 80, 0, 20 * time.Millisecond}, // empty: 20 bytes need 20ms
		{at(5 * time.Millisecond), rate, 80, 0, 15 * time.Millisecond},
		{at(20 * time.Millisecond), rate, 80, 20, 0},
		{at(30 * time.Millisecond), rate, 4, 4, 0}, // 10 refilled, 4 taken
		{at(30 * time.Millisecond), rate, 60, 0, 14 * time.Millisecond},
		{at(time.Hour), rate, 60, 20, 0}, // refill stops at capacity
		{at(time.Hour), rate, 60, 0, 20 * time.Millisecond},
		{at(time.Hour), 10, 60, 1, 0}, // new rate: a full 1-byte bucket
		{at(time.Hour), 10, 59, 0, 100 * time.Millisecond},
	} {
		k, wait := b.take(step.rate, step.n, step.now)
		if k != step.wantK || wait != step.wantWait {
			t.Fatalf("step %d: take(%d, %d) = %d, %v; want %d, %v", i, step.rate, step.n, k, wait, step.wantK, step.wantWait)
		}
	}
}

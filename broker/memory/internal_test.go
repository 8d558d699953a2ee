package memory

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherhq/tether/broker"
)

// TestSeenForgets checks that Seen's memory follows the keys live in their
// window, not every key ever recorded.
func TestSeenForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		defer b.Close()
		const window = 100 * time.Millisecond
		for i := range 10_000 {
			if dup, err := b.Seen(t.Context(), "s", fmt.Sprint(i), window); dup || err != nil {
				t.Fatalf("Seen of key %d = %v, %v; want false, nil", i, dup, err)
			}
			time.Sleep(time.Millisecond)
			d := &b.dedupe
			// window/1ms keys are live; the queue may hold as many again
			// before it is compacted.
			if live, queued := len(d.expires), len(d.queue); live > 101 || queued > 2*101 {
				t.Fatalf("after %d keys, Seen holds %d keys and a queue of %d", i+1, live, queued)
			}
		}
	})
}

// TestLogRingShrinks checks that a log's ring gives memory back once
// trimmed.
func TestLogRingShrinks(t *testing.T) {
	ctx := t.Context()
	b := New()
	defer b.Close()
	h := b.Log("s").(*logHandle)
	ringLen := func() int {
		l := h.cur.Load()
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.buf)
	}
	for seq := uint64(1); seq <= 1000; seq++ {
		if _, err := h.Append(ctx, broker.Entry{Seq: seq}, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if n := ringLen(); n != 1024 {
		t.Errorf("ring of 1000 entries has %d slots, want 1024", n)
	}
	if err := h.Trim(ctx, 900); err != nil {
		t.Fatal(err)
	}
	if n := ringLen(); n != 256 {
		t.Errorf("ring of 100 entries has %d slots, want 256", n)
	}
	if err := h.Trim(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if n := ringLen(); n != keepRing {
		t.Errorf("empty ring has %d slots, want %d", n, keepRing)
	}
}

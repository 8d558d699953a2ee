package client

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// The dispatcher runs callbacks in the order pushed, one at a time, and
// its goroutine ends when the queue is empty.
func TestDispatcherRunsCallbacksInOrderOneAtATime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var d dispatcher
		var got []int
		var running, most atomic.Int32
		for i := range 100 {
			d.push(func() {
				if n := running.Add(1); n > most.Load() {
					most.Store(n)
				}
				got = append(got, i)
				running.Add(-1)
			})
		}
		synctest.Wait() // the loop ran dry and exited: no goroutine left
		if len(got) != 100 || most.Load() != 1 {
			t.Fatalf("ran %d callbacks, at most %d at once; want 100, 1", len(got), most.Load())
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("callback %d ran as number %d", v, i)
			}
		}
	})
}

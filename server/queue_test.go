package server

import (
	"slices"
	"testing"
)

// The queue keeps FIFO order across pops, compaction, growth and
// pushFront, and forgets what it popped.
func TestQueueOrder(t *testing.T) {
	t.Parallel()
	var q queue[int]
	var want []int
	next := 0
	for round := range 200 {
		for range round % 7 {
			q.push(next)
			want = append(want, next)
			next++
		}
		if round%11 == 0 {
			front := []int{-round, -round - 1}
			q.pushFront(front...)
			want = append(slices.Clone(front), want...)
		}
		for range round % 5 {
			v, ok := q.pop()
			if len(want) == 0 {
				if ok {
					t.Fatalf("pop = %d from an empty queue", v)
				}
				continue
			}
			if !ok || v != want[0] {
				t.Fatalf("round %d: pop = %d, %v; want %d", round, v, ok, want[0])
			}
			want = want[1:]
		}
		if q.len() != len(want) {
			t.Fatalf("round %d: len = %d, want %d", round, q.len(), len(want))
		}
		for i := range q.head {
			if q.buf[i] != 0 {
				t.Fatalf("popped slot %d still holds %d", i, q.buf[i])
			}
		}
	}
}

// An emptied queue keeps a small array and drops a large one.
func TestQueueReuse(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in a parallel test.
	var q queue[int]
	for i := range 3 {
		q.push(i)
	}
	for range 3 {
		q.pop()
	}
	if q.head != 0 || cap(q.buf) == 0 {
		t.Fatalf("emptied small queue: head %d, cap %d; want its array kept", q.head, cap(q.buf))
	}
	if n := testing.AllocsPerRun(100, func() { q.push(1); q.pop() }); n != 0 {
		t.Fatalf("push+pop on a warm queue allocates %v times", n)
	}
	for i := range keepQueue + 1 {
		q.push(i)
	}
	for q.len() > 0 {
		q.pop()
	}
	if q.buf != nil {
		t.Fatalf("emptied large queue kept an array of %d", cap(q.buf))
	}
}

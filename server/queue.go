package server

// queue is a FIFO that reuses its backing array: a pop advances a head
// index instead of reslicing, so a queue that empties and fills again (a
// stream's usual life: one frame queued, then written) stops allocating
// once its array is large enough. An emptied queue drops an array grown
// beyond keepQueue items, so that a burst's memory does not stay with an
// idle stream. It is not safe for concurrent use.
type queue[T any] struct {
	buf  []T
	head int // the queued items are buf[head:]; head is 0 when empty
}

// keepQueue is the largest array, in items, an emptied queue keeps.
const keepQueue = 64

func (q *queue[T]) len() int { return len(q.buf) - q.head }

func (q *queue[T]) push(v T) {
	if len(q.buf) == cap(q.buf) && q.head >= len(q.buf)/2 {
		// At least half the array is popped: move the items down
		// rather than grow.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, v)
}

// pushFront queues vs, in order, ahead of the queued items. The queue may
// keep vs's array.
func (q *queue[T]) pushFront(vs ...T) {
	if len(vs) == 0 {
		return
	}
	q.buf, q.head = append(vs, q.buf[q.head:]...), 0
}

// front returns the oldest item without removing it; ok is false when the
// queue is empty.
func (q *queue[T]) front() (v T, ok bool) {
	if q.head == len(q.buf) {
		return v, false
	}
	return q.buf[q.head], true
}

// pop removes and returns the oldest item; ok is false when the queue is
// empty.
func (q *queue[T]) pop() (v T, ok bool) {
	if q.head == len(q.buf) {
		return v, false
	}
	var zero T
	v, q.buf[q.head] = q.buf[q.head], zero
	q.head++
	if q.head == len(q.buf) {
		if cap(q.buf) > keepQueue {
			q.buf = nil
		} else {
			q.buf = q.buf[:0]
		}
		q.head = 0
	}
	return v, true
}

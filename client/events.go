package client

import (
	"context"
	"sync"
	"sync/atomic"
)

// dispatcher runs callbacks in order, one at a time, on a goroutine of its
// own, outside every lock of the session: a slow callback delays later
// callbacks, never the session. Its queue is unbounded (callbacks are
// rare: state changes and RTT samples).
type dispatcher struct {
	inCallback atomic.Bool // a callback is running (Close from one must not wait for it)

	mu      sync.Mutex
	queue   []func()
	running bool
	idle    chan struct{} // closed when the queue empties; nil while idle
}

// push queues f and starts the goroutine if it is not running.
func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue = append(d.queue, f)
	if !d.running {
		d.running = true
		d.idle = make(chan struct{})
		go d.loop()
	}
}

func (d *dispatcher) loop() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			close(d.idle)
			d.mu.Unlock()
			return
		}
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		d.inCallback.Store(true)
		f()
		d.inCallback.Store(false)
	}
}

// wait returns once every queued callback has run, or ctx ends.
func (d *dispatcher) wait(ctx context.Context) error {
	d.mu.Lock()
	idle := d.idle
	running := d.running
	d.mu.Unlock()
	if !running || d.inCallback.Load() {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package client

import (
	"context"
	"sync"
)

// dispatcher runs callbacks in order, one at a time, on a goroutine of its
// own, outside every lock of the session: a slow callback delays later
// callbacks, never the session. Its queue is unbounded (callbacks are
// rare: state changes and RTT samples).
//
// Close may be called from a callback, where waiting for the dispatcher
// would wait for itself. The loop therefore marks the time a callback
// runs (inCallback), and wait does not wait while it is set: a wait that
// finds a callback running returns at once, whoever called it. No
// goroutine identity is needed, at the price of a Close from elsewhere
// that happens to overlap a callback not waiting for the callbacks either.
type dispatcher struct {
	mu         sync.Mutex
	queue      []func()
	running    bool
	inCallback bool          // the loop is inside a callback
	idle       chan struct{} // closed when the queue empties; nil while idle
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
		d.inCallback = true
		d.mu.Unlock()
		f()
		d.mu.Lock()
		d.inCallback = false
		d.mu.Unlock()
	}
}

// wait returns once every queued callback has run, or ctx ends; at once
// when a callback is running (it may be the caller: see dispatcher).
func (d *dispatcher) wait(ctx context.Context) error {
	d.mu.Lock()
	idle, running, inCallback := d.idle, d.running, d.inCallback
	d.mu.Unlock()
	if !running || inCallback {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

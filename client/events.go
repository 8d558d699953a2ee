package client

import (
	"context"
	"reflect"
	"runtime"
	"sync"
)

// dispatcher runs callbacks in order, one at a time, on a goroutine of its
// own, outside every lock of the session: a slow callback delays later
// callbacks, never the session. Its queue is unbounded (callbacks are
// rare: state changes and RTT samples).
//
// Close may be called from a callback, where waiting for the dispatcher
// would wait for itself. wait tells that case apart without goroutine ids:
// the loop marks the time a callback runs (inCallback), and a caller that
// finds it set looks for the dispatcher's loop among its own stack frames
// (runtime.Callers): only a callback has the loop below it.
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

// wait returns once every queued callback has run, or ctx ends. Called
// from a callback, it returns at once: waiting would wait for itself.
func (d *dispatcher) wait(ctx context.Context) error {
	d.mu.Lock()
	idle, running, inCallback := d.idle, d.running, d.inCallback
	d.mu.Unlock()
	if !running || inCallback && inDispatcherLoop() {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dispatcherLoop is the name runtime frames give dispatcher.loop.
var dispatcherLoop = runtime.FuncForPC(reflect.ValueOf((*dispatcher).loop).Pointer()).Name()

// inDispatcherLoop reports whether the caller runs below a dispatcher's
// loop, that is, inside a callback. (A callback of one session that calls
// Close on another session while that one also runs a callback makes
// that Close skip its wait too; waiting could deadlock there as well.)
func inDispatcherLoop() bool {
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		frames := runtime.CallersFrames(pcs[:n])
		for {
			f, more := frames.Next()
			if f.Function == dispatcherLoop {
				return true
			}
			if !more {
				break
			}
		}
		if n < len(pcs) {
			return false
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
}

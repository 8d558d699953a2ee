package client

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// dispatcher runs callbacks in order, one at a time, on a goroutine of its
// own, outside every lock of the session: a slow callback delays later
// callbacks, never the session. Its queue is unbounded (callbacks are
// rare: state changes and RTT samples).
type dispatcher struct {
	callbackG atomic.Uint64 // id of the goroutine running callbacks, 0 when none runs (Close from a callback must not wait for itself)

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
		d.callbackG.Store(goroutineID())
		f()
		d.callbackG.Store(0)
	}
}

// wait returns once every queued callback has run, or ctx ends.
func (d *dispatcher) wait(ctx context.Context) error {
	d.mu.Lock()
	idle := d.idle
	running := d.running
	d.mu.Unlock()
	if !running {
		return nil
	}
	if g := d.callbackG.Load(); g != 0 && g == goroutineID() {
		return nil // called from a callback: waiting would deadlock
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goroutineID returns the calling goroutine's id, parsed from its stack
// header ("goroutine 42 [running]:"). Go offers no API for it; the
// dispatcher needs it only to tell a callback's own call apart.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

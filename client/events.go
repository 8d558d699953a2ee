package client

import "sync"

// dispatcher runs callbacks in order, one at a time, on a goroutine of its
// own, outside every lock of the session: a slow callback delays later
// callbacks, never the session. Its queue is unbounded (callbacks are
// rare: state changes and RTT samples). Nothing waits for it but
// Session.Done's last callback, so a callback may call any method of the
// session, Close included.
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// push queues f and starts the goroutine if it is not running.
func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue = append(d.queue, f)
	if !d.running {
		d.running = true
		go d.loop()
	}
}

func (d *dispatcher) loop() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		f()
	}
}

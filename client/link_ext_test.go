package client_test

import (
	"io"
	"net"
	"sync"
	"time"
)

// shapedConn is an in-memory connection with a fixed latency and a
// bandwidth cap in each direction, for a synctest bubble: bytes written
// leave at most bps bytes per second and arrive delay after they left,
// in order. It wraps the client's end of a bufconn connection.
type shapedConn struct {
	net.Conn
	in   *io.PipeReader // what arrived from the server, after shaping
	done chan struct{}
	once sync.Once
	out  chan []byte // written by the client, to be shaped
}

func newShapedConn(inner net.Conn, delay time.Duration, bps int) *shapedConn {
	pr, pw := io.Pipe()
	c := &shapedConn{Conn: inner, in: pr, done: make(chan struct{}), out: make(chan []byte, 1024)}
	// Client to server.
	go c.shape(c.out, delay, bps, func(b []byte) error { _, err := inner.Write(b); return err })
	// Server to client.
	fromServer := make(chan []byte, 1024)
	go func() {
		defer close(fromServer)
		for {
			b := make([]byte, 32<<10)
			n, err := inner.Read(b)
			if n > 0 {
				select {
				case fromServer <- b[:n]:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		c.shape(fromServer, delay, bps, func(b []byte) error { _, err := pw.Write(b); return err })
		_ = pw.Close()
	}()
	return c
}

// shape sends what arrives on from to deliver: a chunk leaves once the
// ones before it have left at bps (serialization), and is delivered delay
// after it left (propagation; several chunks may be in flight).
func (c *shapedConn) shape(from <-chan []byte, delay time.Duration, bps int, deliver func([]byte) error) {
	type flight struct {
		b      []byte
		arrive time.Time
	}
	inFlight := make(chan flight, 1024)
	go func() {
		defer close(inFlight)
		var free time.Time
		for {
			var b []byte
			select {
			case b = <-from:
				if b == nil {
					return
				}
			case <-c.done:
				return
			}
			free = later(free, time.Now()).Add(time.Duration(len(b)) * time.Second / time.Duration(bps))
			if !c.sleep(time.Until(free)) {
				return
			}
			select {
			case inFlight <- flight{b, free.Add(delay)}:
			case <-c.done:
				return
			}
		}
	}()
	for f := range inFlight {
		if !c.sleep(time.Until(f.arrive)) || deliver(f.b) != nil {
			return
		}
	}
}

// sleep waits d, or until c is closed; it reports false on close.
func (c *shapedConn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *shapedConn) Write(b []byte) (int, error) {
	select {
	case c.out <- append([]byte(nil), b...):
		return len(b), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *shapedConn) Read(b []byte) (int, error) { return c.in.Read(b) }

func (c *shapedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	_ = c.in.Close()
	return c.Conn.Close()
}

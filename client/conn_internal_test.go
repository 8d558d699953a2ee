package client

import (
	"context"
	"errors"
	"testing"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// testConn is a conn as start leaves it, without a stream or a reader:
// its liveness timer armed, nothing due for an hour.
func testConn(t *testing.T) *conn {
	t.Helper()
	s, err := New(WithAddrs("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c := &conn{s: s, cancel: func(error) {}, wake: make(chan struct{}, 1), done: make(chan struct{}), readDone: make(chan struct{})}
	c.pulse.interval, c.pulse.deadAfter = time.Hour, 2*time.Hour
	now := time.Now().UnixNano()
	c.lastRead.Store(now)
	c.lastWrite.Store(now)
	c.timer = time.AfterFunc(time.Hour, c.tick)
	return c
}

// armed reports whether c's timer is armed (and stops it).
func (c *conn) armed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timer.Stop()
}

// After end, neither a tick already under way nor a message taken by the
// application re-arms the liveness timer: an ended stream schedules no
// more pings or acks.
func TestEndedConnStaysStopped(t *testing.T) {
	t.Parallel()
	c := testConn(t)
	c.end(errors.New("test"))
	if c.armed() {
		t.Fatal("the timer is armed after end")
	}
	c.tick() // as if it fired while end ran
	if c.armed() {
		t.Fatal("tick re-armed the timer after end")
	}
	c.s.in.accept(&Message{Seq: 1}) // a message arrived and was taken: an ack is due
	c.noteAckable()
	if c.armed() {
		t.Fatal("noteAckable re-armed the timer after end")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ctrl) != 0 {
		t.Fatalf("%d control frames queued after end", len(c.ctrl))
	}
}

// The server's pings coalesce into one queued pong while the writer is
// held up (flow control): the control queue does not grow by one pong per
// ping, and the pong answers the latest ping.
func TestPongsCoalesce(t *testing.T) {
	t.Parallel()
	c := testConn(t)
	for i := range uint64(1000) {
		if err := c.handle(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ping{Ping: &tetherv1.Ping{Id: i + 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	n := len(c.ctrl)
	c.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d control frames queued for 1000 pings, want 1 pong", n)
	}
	if f, _ := c.nextFrame(); f.GetPong().GetId() != 1000 {
		t.Fatalf("queued %v, want the pong to ping 1000", f)
	}
	// Written: the next ping gets a pong of its own.
	if err := c.handle(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ping{Ping: &tetherv1.Ping{Id: 1001}}}); err != nil {
		t.Fatal(err)
	}
	if f, _ := c.nextFrame(); f.GetPong().GetId() != 1001 {
		t.Fatalf("queued %v, want the pong to ping 1001", f)
	}
}

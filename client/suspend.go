package client

import (
	"errors"
	"sync"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// errSuspended ends a stream because the application suspended the
// session.
var errSuspended = errors.New("tether/client: session suspended")

// suspendCtl is a session's Suspend and Resume.
type suspendCtl struct {
	mu   sync.Mutex
	on   bool
	wake chan struct{} // pokes the session's loop: Suspend, Resume
}

func (c *suspendCtl) init() { c.wake = make(chan struct{}, 1) }

func (c *suspendCtl) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// set turns suspension on or off and reports whether it changed.
func (c *suspendCtl) set(on bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.on != on
	c.on = on
	return changed
}

func (c *suspendCtl) get() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.on
}

// Suspend tells the server that the application goes to the background,
// and stops the session's traffic: call it when the operating system is
// about to suspend the application (iOS's sceneDidEnterBackground,
// Android's onStop). The session sends a Suspend frame (to a server that
// offers it: Welcome.liveness.suspend; an older one is not sent it), and
// the server keeps the session, without expecting heartbeats, for its
// suspend window (an hour by default, instead of the resume window of
// minutes), queueing the messages for it. The stream then ends, and the
// session holds no connection, sends nothing, and stays in
// StateSuspended until [Session.Resume] or [Session.Reconnect]. Send
// still buffers; nothing is lost. Suspend returns at once; it does nothing
// on a session already suspended or closed.
func (s *Session) Suspend() {
	if s.isClosing() || !s.susp.set(true) {
		return
	}
	if c := s.current(); c != nil {
		s.suspendConn(c)
	}
	s.susp.poke() // a loop waiting out a backoff stops waiting
}

// Resume brings a suspended session back at once: no backoff, a stream
// to a healthy backend, the session resumed and whatever the server
// queued meanwhile replayed, in order, each message once. Call it when
// the application comes to the foreground. It does nothing on a session
// that is not suspended.
func (s *Session) Resume() {
	if s.susp.set(false) {
		s.susp.poke()
	}
}

func (s *Session) isSuspended() bool { return s.susp.get() }

// suspendConn ends c for a Suspend: it tells a server that offers Suspend,
// which ends the stream once the frames before it are written (or
// closeGrace passes); otherwise it ends c at once.
func (s *Session) suspendConn(c *conn) {
	if !c.pulse.offers().GetSuspend() {
		c.end(errSuspended)
		return
	}
	c.pushCtrl(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Suspend{Suspend: &tetherv1.Suspend{}}})
	t := time.AfterFunc(closeGrace, func() { c.end(errSuspended) })
	go func() {
		<-c.done
		t.Stop()
	}()
}

// holdWhileSuspended waits, in StateSuspended, while the session is
// suspended. It reports false when the session closes meanwhile.
func (s *Session) holdWhileSuspended() bool {
	if !s.isSuspended() {
		return true
	}
	s.setState(StateChange{State: StateSuspended, Backend: s.lastBackend()})
	for s.isSuspended() {
		select {
		case <-s.susp.wake:
		case <-s.closing:
			return false
		}
	}
	return true
}

// unconnectLocked makes Connect wait again, for the stream after a
// suspension.
func (s *Session) unconnectLocked() {
	select {
	case <-s.connected:
		s.connected = make(chan struct{})
	default:
	}
}

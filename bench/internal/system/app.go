package system

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// The benchmark application's messages. The first byte of a payload is its
// kind; every system carries payloads opaquely, so every system runs the
// same application.
const (
	// KindEcho asks the server to send the payload back unchanged.
	KindEcho byte = 'E'
	// KindSink is counted by the server and dropped.
	KindSink byte = 'S'
	// KindPush asks the server to push messages to this session until
	// KindStop: PushRequest encodes the size and the credit window (0:
	// none, as fast as the system's Send lets it).
	KindPush byte = 'P'
	// KindCredit carries the cumulative count of pushed messages the
	// client has received (8 bytes, big endian).
	KindCredit byte = 'C'
	// KindStop stops this session's pusher.
	KindStop byte = 'X'
	// KindPushed marks a message the server pushed.
	KindPushed byte = 'M'
)

// PushRequest encodes a KindPush payload: push messages of size bytes,
// never more than window beyond the client's last credit.
func PushRequest(size, window int) []byte {
	b := make([]byte, 9)
	b[0] = KindPush
	binary.BigEndian.PutUint32(b[1:], uint32(size))
	binary.BigEndian.PutUint32(b[5:], uint32(window))
	return b
}

// Credit encodes a KindCredit payload.
func Credit(received uint64) []byte {
	b := make([]byte, 9)
	b[0] = KindCredit
	binary.BigEndian.PutUint64(b[1:], received)
	return b
}

// Payload returns a message of size bytes (at least 1) of the given kind.
func Payload(kind byte, size int) []byte {
	b := make([]byte, max(size, 1))
	b[0] = kind
	for i := 1; i < len(b); i++ {
		b[i] = byte('a' + i%26)
	}
	return b
}

// Conn is the server side of one session, as a system hands it to the
// App: Send delivers a payload to the client. Send may be called from
// several goroutines; the system serialises them.
type Conn interface {
	Send(payload []byte) error
}

// ErrClosed is returned by a Conn whose session has ended.
var ErrClosed = errors.New("system: session closed")

// ErrFull is returned by a Conn whose session cannot take the payload now
// (tether: the session's outbound log is full, RESOURCE_EXHAUSTED): the
// App waits and sends it again.
var ErrFull = errors.New("system: session full: retry later")

// Waits of the App's pusher after ErrFull: doubling from fullWaitMin to
// fullWaitMax, back to the minimum after a payload got through. Go's
// timers wake no sooner than about a millisecond on Linux anyway; a
// 4,096-message log drains for several milliseconds at the rates here, so
// the first retry finds room.
const (
	fullWaitMin = time.Millisecond
	fullWaitMax = 16 * time.Millisecond
)

// App is the benchmark application every server system runs: it echoes,
// counts, and pushes with an app-level credit window. It is safe for
// concurrent use.
type App struct {
	received atomic.Uint64 // KindSink messages
	echoed   atomic.Uint64
	pushed   atomic.Uint64
	refused  atomic.Uint64 // ErrFull answers to the pusher
	sessions atomic.Int64
}

// Counters are the App's totals.
type Counters struct {
	Received uint64 `json:"received"`
	Echoed   uint64 `json:"echoed"`
	Pushed   uint64 `json:"pushed"`
	// Refused counts the pusher's sends the system refused as full
	// (ErrFull), each sent again after a wait.
	Refused  uint64 `json:"refused"`
	Sessions int64  `json:"sessions"`
}

// Counters returns the totals so far.
func (a *App) Counters() Counters {
	return Counters{Received: a.received.Load(), Echoed: a.echoed.Load(), Pushed: a.pushed.Load(), Refused: a.refused.Load(), Sessions: a.sessions.Load()}
}

// Peer is the App's state for one session.
type Peer struct {
	app      *App
	conn     Conn
	credited atomic.Uint64
	wake     chan struct{}

	mu      sync.Mutex
	stop    chan struct{} // closed to stop the pusher; nil when none runs
	closed  bool
	pushers sync.WaitGroup
}

// Open starts a session on c. The system calls Close when it ends.
func (a *App) Open(c Conn) *Peer {
	a.sessions.Add(1)
	return &Peer{app: a, conn: c, wake: make(chan struct{}, 1)}
}

// OnMessage handles one client payload. A system calls it from one
// goroutine at a time per session, in order.
func (p *Peer) OnMessage(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case KindEcho:
		if p.conn.Send(b) == nil {
			p.app.echoed.Add(1)
		}
	case KindSink:
		p.app.received.Add(1)
	case KindCredit:
		if len(b) >= 9 {
			p.credited.Store(binary.BigEndian.Uint64(b[1:]))
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	case KindPush:
		if len(b) >= 9 {
			p.startPush(int(binary.BigEndian.Uint32(b[1:])), int(binary.BigEndian.Uint32(b[5:])))
		}
	case KindStop:
		p.stopPush()
	default:
		p.onOther(b) // fanout.go
	}
}

func (p *Peer) startPush(size, window int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.stop != nil {
		return
	}
	stop := make(chan struct{})
	p.stop = stop
	p.pushers.Add(1)
	go func() {
		defer p.pushers.Done()
		p.push(Payload(KindPushed, size), uint64(max(window, 0)), stop)
	}()
}

// push sends payload until stop, at most window beyond the last credit
// (window 0: no credits, as fast as Send lets it); a payload refused as
// full is sent again after a wait.
func (p *Peer) push(payload []byte, window uint64, stop <-chan struct{}) {
	var sent uint64
	wait := fullWaitMin
	for {
		for window > 0 && sent-p.credited.Load() >= window {
			select {
			case <-p.wake:
			case <-stop:
				return
			}
		}
		err := p.conn.Send(payload)
		if errors.Is(err, ErrFull) {
			p.app.refused.Add(1)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			}
			wait = min(2*wait, fullWaitMax)
			continue
		}
		if err != nil {
			return
		}
		wait = fullWaitMin
		sent++
		p.app.pushed.Add(1)
		select {
		case <-stop:
			return
		default:
		}
	}
}

func (p *Peer) stopPush() {
	p.mu.Lock()
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	p.mu.Unlock()
}

// Close ends the session's pusher and waits for it.
func (p *Peer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.stopPush()
	p.pushers.Wait()
	p.app.sessions.Add(-1)
}

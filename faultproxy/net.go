package faultproxy

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Net applies the proxy's faults to in-process connections (a bufconn
// listener's, net.Pipe's): blackhole, latency with jitter and a NAT idle
// timeout, without sockets or goroutines blocked in the kernel. Every wait
// is a timer or a channel, so a test can run a Net inside a
// testing/synctest bubble, in fake time: ten minutes of a heartbeating
// session behind a jittery path or a NAT take milliseconds. Wrap the
// client side's connections with [Net.Dialer] (or [Net.Wrap]). All methods
// are safe for concurrent use. Create one with [NewNet]; end it with
// [Net.Close].
type Net struct {
	blackhole atomic.Bool
	delay     atomic.Int64 // time.Duration
	jitter    atomic.Int64 // time.Duration
	idle      atomic.Int64 // time.Duration; 0: no idle timeout
	idleDrops atomic.Int64

	mu     sync.Mutex
	rng    *rand.Rand
	conns  map[*netConn]struct{}
	closed bool
}

// NewNet returns a Net with no fault switched on. seed seeds the jitter, so
// that a run can be repeated exactly.
func NewNet(seed uint64) *Net {
	return &Net{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), conns: map[*netConn]struct{}{}}
}

// Dialer wraps dial (for example a bufconn listener's DialContext) so that
// every connection it makes goes through n.
func (n *Net) Dialer(dial func(ctx context.Context, addr string) (net.Conn, error)) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		return n.Wrap(c), nil
	}
}

// Wrap returns c with n's faults applied to the bytes it carries both
// ways. c is closed when the result is, or at [Net.Close].
func (n *Net) Wrap(c net.Conn) net.Conn {
	nc := &netConn{Conn: c, n: n, up: make(chan chunk, 64), down: make(chan chunk, 64), done: make(chan struct{})}
	nc.active.Store(time.Now().UnixNano())
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		_ = c.Close()
		return nc
	}
	n.conns[nc] = struct{}{}
	n.mu.Unlock()
	nc.armIdle()
	go nc.pumpUp()
	go nc.pumpDown()
	return nc
}

// Blackhole turns the blackhole on or off, as [Proxy.Blackhole] does: while
// on, bytes both ways on every connection are discarded, and closing a
// connection is not passed on to the other side.
func (n *Net) Blackhole(on bool) { n.blackhole.Store(on) }

// SetDelay holds every chunk written either way for d before the other
// side can read it (one-way latency; a round trip takes twice d). Zero or
// negative turns it off; it applies to chunks written from then on.
func (n *Net) SetDelay(d time.Duration) { n.delay.Store(int64(max(d, 0))) }

// SetJitter varies the delay of each chunk uniformly within ±j (never
// below zero). Chunks of one direction still arrive in order, as on a TCP
// connection: a chunk is never read before the one written ahead of it.
// Zero or negative turns it off.
func (n *Net) SetJitter(j time.Duration) { n.jitter.Store(int64(max(j, 0))) }

// SetIdleTimeout emulates a NAT's idle timer, as [Proxy.SetIdleTimeout]
// does: once a connection carried no byte either way for d, its mapping is
// dropped for good (bytes both ways are discarded, a close is not passed
// on) and [Net.IdleDrops] counts it. It applies at once to current and new
// connections, as a NAT's new timer would; zero or negative turns it off.
func (n *Net) SetIdleTimeout(d time.Duration) {
	n.idle.Store(int64(max(d, 0)))
	n.mu.Lock()
	conns := make([]*netConn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.armIdle()
	}
}

// IdleDrops returns how many connections lost their mapping to the idle
// timeout.
func (n *Net) IdleDrops() int { return int(n.idleDrops.Load()) }

// Close closes every connection n wrapped, those whose close a blackhole
// or an idle drop kept from the other side included, and makes any later
// one closed from the start.
func (n *Net) Close() {
	n.mu.Lock()
	n.closed = true
	conns := n.conns
	n.conns = map[*netConn]struct{}{}
	n.mu.Unlock()
	for c := range conns {
		c.shut(true)
	}
}

// latency is one chunk's delay: the delay, give or take the jitter.
func (n *Net) latency() time.Duration {
	d, j := time.Duration(n.delay.Load()), time.Duration(n.jitter.Load())
	if j > 0 {
		n.mu.Lock()
		d += time.Duration(n.rng.Int64N(int64(2*j)+1)) - j
		n.mu.Unlock()
	}
	return max(d, 0)
}

// chunk is bytes on their way, and when they arrive.
type chunk struct {
	b  []byte
	at time.Time
}

// netConn is one wrapped connection. Writes go to up, whose pump writes
// them to the inner connection when due; the down pump reads the inner
// connection into down, from which Read takes each chunk when it is due.
type netConn struct {
	net.Conn
	n        *Net
	up, down chan chunk
	done     chan struct{}
	once     sync.Once
	active   atomic.Int64 // when a byte last passed either way, Unix ns
	dropped  atomic.Bool

	mu     sync.Mutex
	upAt   time.Time // arrival of the latest chunk written: the next may not come earlier
	downAt time.Time // the same for chunks read
	rest   []byte    // what the latest chunk Read took left over
	timer  *time.Timer
}

// discarding reports whether bytes on c vanish: blackholed or dropped.
func (c *netConn) discarding() bool { return c.n.blackhole.Load() || c.dropped.Load() }

// arrival is when a chunk sent now arrives, after *last's.
func (c *netConn) arrival(last *time.Time) time.Time {
	at := time.Now().Add(c.n.latency())
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.Before(*last) {
		at = *last
	}
	*last = at
	return at
}

// Write queues b for the other side.
func (c *netConn) Write(b []byte) (int, error) {
	ch := chunk{b: append([]byte(nil), b...), at: c.arrival(&c.upAt)}
	select {
	case c.up <- ch:
		return len(b), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

// Read returns the next bytes from the other side once they arrived.
func (c *netConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	for {
		var ch chunk
		var ok bool
		select {
		case ch, ok = <-c.down:
		case <-c.done:
			return 0, net.ErrClosed
		}
		if !ok {
			return 0, net.ErrClosed
		}
		if !c.waitUntil(ch.at) {
			return 0, net.ErrClosed
		}
		if c.discarding() {
			continue
		}
		c.touch()
		n := copy(b, ch.b)
		c.mu.Lock()
		c.rest = ch.b[n:]
		c.mu.Unlock()
		return n, nil
	}
}

// Close closes c. Its inner connection is closed too, unless the path is
// blackholed or dropped: then the other side never learns, until
// [Net.Close].
func (c *netConn) Close() error {
	c.shut(!c.discarding())
	return nil
}

func (c *netConn) shut(inner bool) {
	c.once.Do(func() {
		close(c.done)
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
	})
	if inner {
		_ = c.Conn.Close()
		c.n.mu.Lock()
		delete(c.n.conns, c)
		c.n.mu.Unlock()
	}
}

// pumpUp writes each chunk to the inner connection when it is due.
func (c *netConn) pumpUp() {
	for {
		var ch chunk
		select {
		case ch = <-c.up:
		case <-c.done:
			return
		}
		if !c.waitUntil(ch.at) {
			return
		}
		if c.discarding() {
			continue
		}
		c.touch()
		if _, err := c.Conn.Write(ch.b); err != nil {
			return
		}
	}
}

// pumpDown reads the inner connection into down, stamping each chunk with
// its arrival.
func (c *netConn) pumpDown() {
	defer close(c.down)
	for {
		buf := make([]byte, bufSize)
		n, err := c.Conn.Read(buf)
		if n > 0 {
			select {
			case c.down <- chunk{b: buf[:n], at: c.arrival(&c.downAt)}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitUntil waits until at; false if c closed meanwhile.
func (c *netConn) waitUntil(at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

// touch notes a byte passing, for the idle timeout.
func (c *netConn) touch() { c.active.Store(time.Now().UnixNano()) }

// armIdle (re)arms the idle timer for the current timeout.
func (c *netConn) armIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	idle := time.Duration(c.n.idle.Load())
	if idle <= 0 || c.dropped.Load() {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	left := time.Until(time.Unix(0, c.active.Load()).Add(idle))
	c.timer = time.AfterFunc(max(left, 0), c.checkIdle)
}

// checkIdle drops the mapping once the connection was idle for the
// timeout, or re-arms for what is left of it.
func (c *netConn) checkIdle() {
	idle := time.Duration(c.n.idle.Load())
	if idle <= 0 {
		return
	}
	if time.Since(time.Unix(0, c.active.Load())) >= idle {
		if c.dropped.CompareAndSwap(false, true) {
			c.n.idleDrops.Add(1)
		}
		return
	}
	c.armIdle()
}

package faultproxy

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// bufSize is the largest chunk read from one side before it is forwarded.
const bufSize = 32 << 10

// Proxy forwards TCP connections from a loopback listener to a target
// address and injects faults on request. All methods are safe for
// concurrent use. Create one with [Start]; stop it with [Proxy.Close].
type Proxy struct {
	target string
	ln     *net.TCPListener
	ctx    context.Context // canceled by Close; bounds upstream dials
	cancel context.CancelFunc

	epoch time.Time // origin of link.active, for monotonic idle times

	blackhole atomic.Bool
	refuse    atomic.Bool
	delay     atomic.Int64 // time.Duration
	jitter    atomic.Int64 // time.Duration
	dropped   atomic.Int64 // bytes discarded by the blackhole or an idle drop
	idleDrops atomic.Int64 // links dropped by the idle timeout

	optsMu sync.Mutex              // serializes option updates
	opts   atomic.Pointer[options] // bandwidth and idle timeout

	mu     sync.Mutex
	closed bool
	links  map[*link]struct{}

	wg sync.WaitGroup // every goroutine the proxy started
}

// Start listens on an ephemeral port of 127.0.0.1 and forwards each
// accepted connection to target, a "host:port" address dialed over TCP for
// every new connection. If the dial fails, the client connection is reset.
func Start(target string) (*Proxy, error) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target: target,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		epoch:  time.Now(),
		links:  make(map[*link]struct{}),
	}
	p.opts.Store(&options{changed: make(chan struct{})})
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's listening address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole turns the blackhole on or off. While it is on, bytes in both
// directions, on current and new connections, are read and silently
// discarded, and a FIN or reset from either side is not passed on; the
// connections stay open. Turning it off resumes forwarding of bytes read
// from then on; what was discarded is lost. A connection that lost a FIN or
// reset this way stays open until [Proxy.Reset] or [Proxy.Close].
func (p *Proxy) Blackhole(on bool) { p.blackhole.Store(on) }

// Refuse turns refusal of new connections on or off. While it is on, each
// new connection is accepted and immediately reset without dialing the
// target. Current connections are not affected.
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// SetDelay holds each chunk read from either side for d before forwarding
// it, adding at least d of latency per direction. Chunks of one direction
// are forwarded one at a time. Zero or negative turns the delay off; the
// change applies to chunks read from then on.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(max(d, 0))) }

// SetJitter varies the delay of each chunk uniformly within ±j (never
// below zero), so that round trips vary as on a real path. Chunks of one
// direction stay in order (they are forwarded one at a time). Zero or
// negative turns it off; it applies to chunks read from then on.
func (p *Proxy) SetJitter(j time.Duration) { p.jitter.Store(int64(max(j, 0))) }

// chunkDelay is the delay of the next chunk: the delay, give or take the
// jitter.
func (p *Proxy) chunkDelay() time.Duration {
	d := time.Duration(p.delay.Load())
	if j := time.Duration(p.jitter.Load()); j > 0 {
		d += time.Duration(rand.Int64N(int64(2*j)+1)) - j
	}
	return max(d, 0)
}

// SetBandwidth caps the throughput of every proxied connection, current
// and new, to bytesPerSecond in each direction separately: a connection
// can carry bytesPerSecond upstream and bytesPerSecond downstream at the
// same time, independently of other connections. Zero or negative removes
// the cap.
//
// The cap is a token bucket per connection and direction that holds up to
// 20ms worth of bytes (bytesPerSecond/50, at least one byte) and starts
// full, so a burst of that size passes at once and longer transfers run at
// the cap. Bytes beyond it wait in the proxy, and then in the sender's
// socket buffers, exactly as long as the bucket needs to refill; the wait
// ends early when the connection is reset or closed ([Proxy.Reset],
// [Proxy.Close]) and when the cap changes, which applies at once to bytes
// not yet forwarded.
func (p *Proxy) SetBandwidth(bytesPerSecond int) {
	p.setOptions(func(o *options) { o.bandwidth = max(bytesPerSecond, 0) })
}

// SetIdleTimeout emulates the idle timer of a NAT or load balancer. Once a
// proxied connection has carried no bytes in either direction for d, its
// mapping is dropped silently: from then on, bytes in both directions are
// read and discarded and a FIN or reset from either side is not passed
// on, as with [Proxy.Blackhole] but for that connection only. Both sides
// stay connected and the connection still counts in [Proxy.Conns].
// Nothing restores a dropped mapping: the connection ends when a side
// gives up on its own (an application-level keepalive such as an HTTP/2
// PING times out; TCP keepalives do not notice, as the proxy's sockets
// answer them), or at [Proxy.Reset] or [Proxy.Close]. [Proxy.IdleDrops]
// counts the drops.
//
// Idleness is measured from the last byte the proxy read from or
// forwarded to either side (or from the connection's arrival), and d
// applies at once to current and new connections. Zero or negative turns
// the timer off; connections already dropped stay dropped.
func (p *Proxy) SetIdleTimeout(d time.Duration) {
	p.setOptions(func(o *options) { o.idle = max(d, 0) })
}

// IdleDrops returns the number of connections whose mapping was dropped by
// the idle timeout (see [Proxy.SetIdleTimeout]) since [Start].
func (p *Proxy) IdleDrops() int { return int(p.idleDrops.Load()) }

// options are the settings that goroutines waiting on a link must notice
// as soon as they change. Each value is immutable; a change stores a copy
// and closes the old value's changed channel.
type options struct {
	bandwidth int           // bytes per second and direction; 0 = unlimited
	idle      time.Duration // idle timeout; 0 = off
	changed   chan struct{} // closed when these options are replaced
}

func (p *Proxy) setOptions(update func(*options)) {
	p.optsMu.Lock()
	defer p.optsMu.Unlock()
	old := p.opts.Load()
	o := *old
	o.changed = make(chan struct{})
	update(&o)
	p.opts.Store(&o)
	close(old.changed)
}

// since returns the time elapsed since the proxy started, as stored in
// link.active.
func (p *Proxy) since() int64 { return int64(time.Since(p.epoch)) }

// Reset closes every current connection abruptly: both the client and the
// target side get a TCP RST (SO_LINGER 0). New connections are proxied as
// usual.
func (p *Proxy) Reset() {
	p.mu.Lock()
	links := p.drainLocked()
	p.mu.Unlock()
	for _, l := range links {
		l.close(true)
	}
}

// Conns returns the number of proxied connections currently open,
// including accepted ones whose dial to the target is still in progress.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops the listener, closes every connection and waits until every
// goroutine started by the proxy has finished. Later calls only wait for
// the same and return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	links := p.drainLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.cancel()
	for _, l := range links {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

// drainLocked removes and returns all current links. p.mu must be held.
func (p *Proxy) drainLocked() []*link {
	ls := make([]*link, 0, len(p.links))
	for l := range p.links {
		ls = append(ls, l)
		delete(p.links, l)
	}
	return ls
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// Transient (e.g. EMFILE): back off briefly, like net/http.
			t := time.NewTimer(5 * time.Millisecond)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		if p.refuse.Load() {
			abort(c)
			continue
		}
		l := &link{p: p, client: c, done: make(chan struct{})}
		l.touch()
		p.mu.Lock()
		closed := p.closed
		if !closed {
			p.links[l] = struct{}{}
		}
		p.mu.Unlock()
		if closed {
			abort(c)
			return
		}
		p.wg.Add(1)
		go p.serve(l)
	}
}

// serve dials the target for l and then forwards in both directions.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	var d net.Dialer
	c, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		l.close(true)
		return
	}
	up := c.(*net.TCPConn)
	if !l.setUpstream(up) { // reset or closed while dialing
		abort(up)
		return
	}
	p.wg.Add(2)
	go p.watchIdle(l)
	go func() {
		defer p.wg.Done()
		p.pipe(l, up, l.client)
	}()
	p.pipe(l, l.client, up)
}

// watchIdle drops l's mapping once it has been idle for the idle timeout,
// and returns then or when l closes.
func (p *Proxy) watchIdle(l *link) {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		o := p.opts.Load()
		var fire <-chan time.Time
		if o.idle > 0 {
			idle := time.Duration(p.since() - l.active.Load())
			if idle >= o.idle {
				if l.drop() {
					p.idleDrops.Add(1)
				}
				return
			}
			t.Reset(o.idle - idle)
			fire = t.C
		}
		select {
		case <-fire:
		case <-o.changed:
			t.Stop()
		case <-l.done:
			return
		}
	}
}

// pipe copies src to dst, applying the current delay, blackhole, idle
// drop and bandwidth cap to each chunk, until src ends or the link is
// closed.
func (p *Proxy) pipe(l *link, dst, src *net.TCPConn) {
	buf := make([]byte, bufSize)
	var tb bucket
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.touch()
			if d := p.chunkDelay(); d > 0 && !l.sleep(d) {
				return
			}
			if !p.forward(l, &tb, dst, buf[:n]) {
				return
			}
		}
		if err == nil {
			continue
		}
		switch {
		case p.discarding(l):
			// Swallow the FIN or reset; the peer never learns.
			l.halfDone(true)
		case errors.Is(err, io.EOF):
			_ = dst.CloseWrite()
			l.halfDone(false)
		default:
			l.close(true)
		}
		return
	}
}

// forward writes b to dst within the bandwidth cap, or discards what is
// left of it once the link is blackholed or dropped. It reports false if
// the link was closed.
func (p *Proxy) forward(l *link, tb *bucket, dst *net.TCPConn, b []byte) bool {
	for len(b) > 0 {
		if p.discarding(l) {
			p.dropped.Add(int64(len(b)))
			return true
		}
		k := len(b)
		if o := p.opts.Load(); o.bandwidth > 0 {
			var wait time.Duration
			k, wait = tb.take(o.bandwidth, len(b), time.Now())
			if wait > 0 {
				if !l.wait(wait, o.changed) {
					return false
				}
				continue // the cap may have changed; ask again
			}
		}
		if _, err := dst.Write(b[:k]); err != nil {
			l.close(true)
			return false
		}
		l.touch()
		b = b[k:]
	}
	return true
}

// discarding reports whether bytes, FINs and resets on l are to be
// discarded: the proxy is blackholed or l's mapping was dropped.
func (p *Proxy) discarding(l *link) bool {
	return p.blackhole.Load() || l.dropped.Load()
}

// bucket is the token bucket of one direction of one link. Only the pipe
// goroutine of that direction uses it.
type bucket struct {
	rate   int     // bytes per second the bucket is filled at; 0 = unused
	tokens float64 // bytes that may be sent now, at most burst(rate)
	last   time.Time
}

// burst returns the capacity of a bucket filled at rate bytes per second:
// 20ms worth of bytes, at least one.
func burst(rate int) int { return max(rate/50, 1) }

// take refills the bucket up to now and either takes the tokens for the
// next piece of an n-byte chunk, returning the piece's size, or returns
// how long to wait until that piece may be sent. A piece is at most one
// bucket's capacity. A change of rate starts a full bucket.
func (b *bucket) take(rate, n int, now time.Time) (int, time.Duration) {
	capacity := burst(rate)
	if b.rate != rate {
		*b = bucket{rate: rate, tokens: float64(capacity), last: now}
	} else if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(capacity), b.tokens+el.Seconds()*float64(rate))
		b.last = now
	}
	k := float64(min(n, capacity))
	if b.tokens >= k {
		b.tokens -= k
		return int(k), 0
	}
	need := (k - b.tokens) / float64(rate) * float64(time.Second)
	return 0, time.Duration(math.Ceil(need))
}

// link is one proxied connection: the accepted client side and the
// connection dialed to the target.
type link struct {
	p      *Proxy
	client *net.TCPConn
	done   chan struct{} // closed by close

	mu        sync.Mutex
	upstream  *net.TCPConn // nil while dialing
	closed    bool
	halves    int  // directions that have ended
	swallowed bool // a FIN or reset was discarded by the blackhole

	active  atomic.Int64 // Proxy.since at the last byte read or forwarded
	dropped atomic.Bool  // the idle timeout dropped the mapping
}

// touch records activity on l for the idle timeout.
func (l *link) touch() { l.active.Store(l.p.since()) }

// drop marks l's mapping as dropped and reports whether it did so, that is
// whether l was still open and not dropped before.
func (l *link) drop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && l.dropped.CompareAndSwap(false, true)
}

func (l *link) setUpstream(up *net.TCPConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.upstream = up
	return true
}

// halfDone records that one direction ended, by a FIN that was passed on
// or by a FIN or reset that was swallowed (by the blackhole or an idle
// drop). The link closes once both
// directions have ended, unless something was swallowed: then the peer that
// never learned keeps its connection open until Reset or Close.
func (l *link) halfDone(swallowed bool) {
	l.mu.Lock()
	l.halves++
	l.swallowed = l.swallowed || swallowed
	both := l.halves == 2 && !l.swallowed
	l.mu.Unlock()
	if both {
		l.close(false)
	}
}

// close closes both sides, with a reset if hard, and forgets the link. It
// is idempotent.
func (l *link) close(hard bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	close(l.done)
	up := l.upstream
	l.mu.Unlock()
	for _, c := range []*net.TCPConn{l.client, up} {
		if c == nil {
			continue
		}
		if hard {
			abort(c)
		} else {
			_ = c.Close()
		}
	}
	l.p.remove(l)
}

// sleep waits for d and reports false if the link closed first.
func (l *link) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// wait waits for d and reports false if the link closed first. It returns
// true early when changed is closed.
func (l *link) wait(d time.Duration, changed <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-changed:
		return true
	case <-l.done:
		return false
	}
}

// abort closes c so that the peer gets a TCP RST instead of a FIN.
func abort(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

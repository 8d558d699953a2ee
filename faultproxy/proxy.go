package faultproxy

import (
	"context"
	"errors"
	"io"
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

	blackhole atomic.Bool
	refuse    atomic.Bool
	delay     atomic.Int64 // time.Duration
	dropped   atomic.Int64 // bytes discarded while blackholed

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
	p := &Proxy{target: target, ln: ln, ctx: ctx, cancel: cancel, links: make(map[*link]struct{})}
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
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pipe(l, up, l.client)
	}()
	p.pipe(l, l.client, up)
}

// pipe copies src to dst, applying the current delay and blackhole to each
// chunk, until src ends or the link is closed.
func (p *Proxy) pipe(l *link, dst, src *net.TCPConn) {
	buf := make([]byte, bufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); d > 0 && !l.sleep(d) {
				return
			}
			if p.blackhole.Load() {
				p.dropped.Add(int64(n))
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close(true)
				return
			}
		}
		if err == nil {
			continue
		}
		switch {
		case p.blackhole.Load():
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
// or by a FIN or reset that was swallowed. The link closes once both
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

// abort closes c so that the peer gets a TCP RST instead of a FIN.
func abort(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherhq/tether/faultproxy"
)

// Real-time bounds, in the grpc-go test convention: long for what must
// happen, short for what must not.
const (
	waitLong  = 10 * time.Second
	waitShort = 200 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backend is a loopback TCP server behind the proxy. In echo mode it
// echoes every connection; otherwise it hands each accepted connection to
// the test on accepted.
type backend struct {
	ln       net.Listener
	accepted chan net.Conn
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startBackend(t *testing.T, echo bool) *backend {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b := &backend{ln: ln, accepted: make(chan net.Conn, 64)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			if !echo {
				b.accepted <- c
				continue
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// next returns the next connection the backend accepted.
func (b *backend) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-b.accepted:
		return c
	case <-time.After(waitLong):
		t.Fatal("backend accepted no connection")
		return nil
	}
}

func startProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// expect reads exactly len(want) bytes from c and compares them to want.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectSilence checks that nothing arrives on c for waitShort.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitShort))
	var b [64]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read = %q, %v; want a timeout: bytes, FIN or reset passed", b[:n], err)
	}
}

// expectBroken checks that a read on c fails promptly with a reset or EOF.
func expectBroken(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	var b [64]byte
	n, err := c.Read(b[:])
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("read = %q, %v; want connection reset or EOF", b[:n], err)
	}
}

// expectResetOnConnect dials addr and checks that the connection is reset
// right away. The reset can win the race with the dial's own completion
// check, so a dial error ECONNRESET counts too.
func expectResetOnConnect(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial %s: %v; want success or connection reset", addr, err)
		}
		return
	}
	defer c.Close()
	expectBroken(t, c)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectNoProxyGoroutines checks, after Close, that no goroutine runs proxy
// code. Close returns once every proxy goroutine has run its deferred
// WaitGroup.Done, which can be a moment before the goroutine is gone, so
// this polls briefly (as goleak does) instead of looking once.
func expectNoProxyGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		gs := proxyGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy goroutines alive after Close:\n%s", strings.Join(gs, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

// proxyGoroutines returns the stacks of goroutines running proxy code.
func proxyGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "/tether/faultproxy.") {
			out = append(out, g)
		}
	}
	return out
}

func TestStartListensOnLoopback(t *testing.T) {
	p := startProxy(t, "127.0.0.1:1")
	host, _, err := net.SplitHostPort(p.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:port", p.Addr())
	}
}

func TestForward(t *testing.T) {
	b := startBackend(t, true)
	p := startProxy(t, b.addr())

	c1, c2 := dial(t, p.Addr()), dial(t, p.Addr())
	for i := range 3 {
		msg := strings.Repeat("x", i+1)
		send(t, c1, msg)
		expect(t, c1, msg)
		send(t, c2, "c2"+msg)
		expect(t, c2, "c2"+msg)
	}
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns() = %d, want 2", n)
	}

	// A large payload, written while the echo is read back, arrives intact.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	go func() {
		c1.SetWriteDeadline(time.Now().Add(waitLong))
		c1.Write(payload)
	}()
	c1.SetReadDeadline(time.Now().Add(waitLong))
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c1, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("1 MiB echo: err %v, intact %v", err, bytes.Equal(got, payload))
	}

	// A client FIN travels to the backend, whose FIN comes back; the link
	// then goes away.
	c2.(*net.TCPConn).CloseWrite()
	c2.SetReadDeadline(time.Now().Add(waitLong))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after CloseWrite = %d, %v; want EOF", n, err)
	}
	eventually(t, "Conns() == 1", func() bool { return p.Conns() == 1 })
}

func TestBlackhole(t *testing.T) {
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)
	send(t, c, "up")
	expect(t, s, "up")
	send(t, s, "down")
	expect(t, c, "down")

	p.Blackhole(true)
	send(t, c, "lost-up")
	expectSilence(t, s)
	send(t, s, "lost-down")
	expectSilence(t, c)
	eventually(t, "the proxy to discard 16 bytes", func() bool { return p.Dropped() == 16 })
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() while blackholed = %d, want 1", n)
	}

	p.Blackhole(false)
	send(t, c, "again")
	expect(t, s, "again")
	send(t, s, "back")
	expect(t, c, "back")
}

func TestBlackholeSwallowsFINAndReset(t *testing.T) {
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)
	send(t, c, "hi")
	expect(t, s, "hi")

	p.Blackhole(true)
	c.(*net.TCPConn).CloseWrite()
	expectSilence(t, s)
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	expectSilence(t, c)
}

func TestReset(t *testing.T) {
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)
	send(t, c, "ping")
	expect(t, s, "ping")

	p.Reset()
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Reset = %d, want 0", n)
	}
	expectBroken(t, c)
	expectBroken(t, s)

	// New connections are proxied as usual.
	c2 := dial(t, p.Addr())
	s2 := b.next(t)
	send(t, c2, "pong")
	expect(t, s2, "pong")
}

func TestRefuse(t *testing.T) {
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	old := dial(t, p.Addr())
	oldS := b.next(t)

	p.Refuse(true)
	expectResetOnConnect(t, p.Addr())
	select {
	case <-b.accepted:
		t.Fatal("backend got a connection while the proxy was refusing")
	case <-time.After(waitShort):
	}
	// Current connections are not affected.
	send(t, old, "still")
	expect(t, oldS, "still")

	p.Refuse(false)
	c2 := dial(t, p.Addr())
	s2 := b.next(t)
	send(t, c2, "ok")
	expect(t, s2, "ok")
}

func TestDelay(t *testing.T) {
	const d = 100 * time.Millisecond
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)

	p.SetDelay(d)
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"up", c, s}, {"down", s, c}} {
		start := time.Now()
		send(t, dir.from, dir.name)
		expect(t, dir.to, dir.name)
		if el := time.Since(start); el < d {
			t.Errorf("%s: forwarded after %v, want at least %v", dir.name, el, d)
		}
	}

	p.SetDelay(0)
	send(t, c, "fast")
	expect(t, s, "fast")
}

func TestClose(t *testing.T) {
	b := startBackend(t, false)
	p, err := faultproxy.Start(b.addr())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c1 := dial(t, p.Addr())
	s1 := b.next(t)
	send(t, c1, "a")
	expect(t, s1, "a")
	// A chunk held by a long delay must not keep Close waiting.
	c2 := dial(t, p.Addr())
	b.next(t)
	p.SetDelay(time.Hour)
	send(t, c2, "held")
	// A blackholed connection must not either.
	c3 := dial(t, p.Addr())
	b.next(t)
	eventually(t, "Conns() == 3", func() bool { return p.Conns() == 3 })
	p.Blackhole(true)
	send(t, c3, "dropped")

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Close did not return")
	}
	expectNoProxyGoroutines(t)
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Close = %d, want 0", n)
	}
	for _, c := range []net.Conn{c1, c2, c3} {
		expectBroken(t, c)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), waitLong); err == nil {
		c.Close()
		t.Fatal("dial after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDialFailureResetsClient(t *testing.T) {
	// Reserve a port and free it so that nothing listens there.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()

	p := startProxy(t, target)
	expectResetOnConnect(t, p.Addr())
	eventually(t, "Conns() == 0", func() bool { return p.Conns() == 0 })
}

// TestResetUnderLoad races Reset and the fault switches against clients
// that connect and exchange data, then checks that Close still cleans up.
func TestResetUnderLoad(t *testing.T) {
	b := startBackend(t, true)
	p, err := faultproxy.Start(b.addr())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 5)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), waitLong)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(waitShort))
				for range 10 {
					if _, err := c.Write([]byte("hello")); err != nil {
						break
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						break
					}
				}
				c.Close()
			}
		}()
	}
	for i := range 50 {
		p.Reset()
		p.SetDelay(time.Duration(i%2) * time.Millisecond)
		p.Blackhole(i%7 == 0)
		p.Refuse(i%5 == 0)
		p.SetBandwidth(i % 3 * 100_000)
		p.SetIdleTimeout(time.Duration(i%4) * time.Millisecond)
		_ = p.Conns()
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectNoProxyGoroutines(t)
}

// transfer writes n bytes to from and checks that they all arrive, intact,
// on to. It returns how long that took, from the first write to the last
// byte read.
func transfer(t *testing.T, from, to net.Conn, n int) time.Duration {
	t.Helper()
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		from.SetWriteDeadline(time.Now().Add(waitLong))
		_, err := from.Write(payload)
		werr <- err
	}()
	to.SetReadDeadline(time.Now().Add(waitLong))
	got := make([]byte, n)
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	el := time.Since(start)
	if err := <-werr; err != nil {
		t.Fatalf("write %d bytes: %v", n, err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("%d bytes arrived corrupted", n)
	}
	return el
}

func TestBandwidth(t *testing.T) {
	const (
		rate = 100_000 // bytes per second
		n    = 50_000  // bytes per transfer: 500ms at rate
		// The bucket starts full with 20ms worth of bytes, which pass at
		// once; the rest cannot arrive faster than the rate allows.
		minTime = time.Duration(n-rate/50) * time.Second / rate
	)
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)

	p.SetBandwidth(rate)
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"up", c, s}, {"down", s, c}} {
		if el := transfer(t, dir.from, dir.to, n); el < minTime {
			t.Errorf("%s: %d bytes at %d B/s took %v, want at least %v", dir.name, n, rate, el, minTime)
		}
	}

	// The cap is per direction: both directions at once still take at
	// least as long each.
	var wg sync.WaitGroup
	var down time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		down = transfer(t, s, c, n)
	}()
	up := transfer(t, c, s, n)
	wg.Wait()
	if up < minTime || down < minTime {
		t.Errorf("both directions at once: up %v, down %v; want each at least %v", up, down, minTime)
	}

	p.SetBandwidth(0)
	transfer(t, c, s, 1<<20)
	transfer(t, s, c, 1<<20)
}

// TestBandwidthOffReleasesWaitingBytes checks that removing the cap
// applies at once to bytes that are waiting for it.
func TestBandwidthOffReleasesWaitingBytes(t *testing.T) {
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)

	// At 10 B/s the bucket holds one byte: 1000 bytes would take 100s.
	p.SetBandwidth(10)
	msg := strings.Repeat("z", 1000)
	send(t, c, msg)
	expect(t, s, "z")
	p.SetBandwidth(0)
	expect(t, s, msg[1:])
}

// TestBandwidthWaitInterrupted checks that Reset and Close end a wait for
// the bandwidth cap at once instead of when the bytes would be due.
func TestBandwidthWaitInterrupted(t *testing.T) {
	const wait = time.Second // between bytes at 1 B/s
	b := startBackend(t, false)
	p, err := faultproxy.Start(b.addr())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Close()
	p.SetBandwidth(1)

	c := dial(t, p.Addr())
	s := b.next(t)
	send(t, c, "abc")
	expect(t, s, "a") // the proxy now waits a second for "b"
	p.Reset()
	expectBroken(t, c)
	expectBroken(t, s)

	c2 := dial(t, p.Addr())
	s2 := b.next(t)
	send(t, c2, "abc")
	expect(t, s2, "a")
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waits for every proxy goroutine, including the one waiting to
	// forward "b"; it must not have slept until "b" was due.
	if el := time.Since(start); el >= wait/2 {
		t.Fatalf("Close took %v while a byte was due in %v: the wait was not interrupted", el, wait)
	}
	expectNoProxyGoroutines(t)
	expectBroken(t, c2)
}

func TestIdleTimeout(t *testing.T) {
	const d = 200 * time.Millisecond
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	active := dial(t, p.Addr())
	activeS := b.next(t)
	quiet := dial(t, p.Addr())
	quietS := b.next(t)

	p.SetIdleTimeout(d)
	quietSince := time.Now()
	send(t, quiet, "hi")
	expect(t, quietS, "hi")

	// active carries bytes every 50ms for 1s, first only upstream, then
	// only downstream: bytes in either direction keep the mapping.
	start := time.Now()
	for time.Since(start) < time.Second {
		from, to := active, activeS
		if time.Since(start) >= time.Second/2 {
			from, to = activeS, active
		}
		send(t, from, "k")
		expect(t, to, "k")
		time.Sleep(50 * time.Millisecond)
	}
	send(t, active, "alive")
	expect(t, activeS, "alive")
	send(t, activeS, "alive")
	expect(t, active, "alive")

	// quiet has been silent for a second, far longer than d.
	eventually(t, "IdleDrops() == 1", func() bool { return p.IdleDrops() == 1 })
	if el := time.Since(quietSince); el < d {
		t.Fatalf("quiet dropped after %v of silence, want at least %v", el, d)
	}

	// Turned off, the timer drops nothing more, however long the silence
	// (the checks below keep active quiet for well over d), but a dropped
	// mapping stays dropped.
	p.SetIdleTimeout(0)

	// quiet's mapping is gone: bytes, FIN and reset vanish in both
	// directions while both sides stay connected.
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns() after the idle drop = %d, want 2", n)
	}
	send(t, quiet, "lost-up")
	expectSilence(t, quietS)
	send(t, quietS, "lost-down")
	expectSilence(t, quiet)
	eventually(t, "the proxy to discard 16 bytes", func() bool { return p.Dropped() == 16 })
	quiet.(*net.TCPConn).CloseWrite()
	expectSilence(t, quietS)

	time.Sleep(d)
	send(t, active, "still")
	expect(t, activeS, "still")
	send(t, activeS, "here")
	expect(t, active, "here")
	if n := p.IdleDrops(); n != 1 {
		t.Fatalf("IdleDrops() = %d, want 1", n)
	}

	// A reset ends the dropped connection too.
	p.Reset()
	expectBroken(t, quiet)
	expectBroken(t, quietS)
}

// TestIdleTimeoutAppliesToCurrentConnections checks that a timeout set
// after a connection went quiet counts the silence from the last byte.
func TestIdleTimeoutAppliesToCurrentConnections(t *testing.T) {
	b := startBackend(t, false)
	p := startProxy(t, b.addr())
	c := dial(t, p.Addr())
	s := b.next(t)
	send(t, c, "x")
	expect(t, s, "x")

	time.Sleep(100 * time.Millisecond)
	p.SetIdleTimeout(50 * time.Millisecond)
	eventually(t, "IdleDrops() == 1", func() bool { return p.IdleDrops() == 1 })
	send(t, c, "gone")
	expectSilence(t, s)
}

package faultproxy_test

import (
	"context"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherhq/tether/faultproxy"
)

// netPair returns a client end wrapped by n and the server end of a pipe,
// inside a bubble.
func netPair(t *testing.T, n *faultproxy.Net) (client, server net.Conn) {
	t.Helper()
	c, s := net.Pipe()
	dial := n.Dialer(func(context.Context, string) (net.Conn, error) { return c, nil })
	client, err := dial(t.Context(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		_ = s.Close()
	})
	return client, s
}

// echoAll answers every byte on c until it ends.
func echoAll(c net.Conn) {
	buf := make([]byte, 64)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
	}
}

func roundTrip(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func TestNetDelayAndJitter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := faultproxy.NewNet(1)
		c, s := netPair(t, n)
		go echoAll(s)
		n.SetDelay(50 * time.Millisecond)
		if got := roundTrip(t, c); got != 100*time.Millisecond {
			t.Fatalf("round trip %v; want 2 × 50ms", got)
		}
		n.SetJitter(30 * time.Millisecond)
		lo, hi := time.Hour, time.Duration(0)
		for range 200 {
			d := roundTrip(t, c)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < 40*time.Millisecond || hi > 160*time.Millisecond || hi-lo < 60*time.Millisecond {
			t.Fatalf("round trips %v to %v; want within 40ms to 160ms, and spread", lo, hi)
		}
	})
}

func TestNetKeepsOrderUnderJitter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := faultproxy.NewNet(2)
		c, s := netPair(t, n)
		n.SetDelay(50 * time.Millisecond)
		n.SetJitter(50 * time.Millisecond)
		go func() {
			for i := range 100 {
				if _, err := c.Write([]byte{byte(i)}); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		b := make([]byte, 1)
		for i := range 100 {
			if _, err := io.ReadFull(s, b); err != nil || b[0] != byte(i) {
				t.Fatalf("byte %d: %v %v; want %d in order", i, b[0], err, i)
			}
		}
	})
}

func TestNetIdleTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := faultproxy.NewNet(3)
		c, s := netPair(t, n)
		go echoAll(s)
		n.SetIdleTimeout(30 * time.Second)
		time.Sleep(29 * time.Second)
		roundTrip(t, c) // within the timer: the mapping holds, and the timer restarts
		time.Sleep(29 * time.Second)
		roundTrip(t, c)
		if n.IdleDrops() != 0 {
			t.Fatalf("%d drops while the path was never idle 30s", n.IdleDrops())
		}
		// A shorter timer applies to the current connection at once.
		n.SetIdleTimeout(10 * time.Second)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n.IdleDrops() != 1 {
			t.Fatalf("%d drops after 10s idle behind a 10s timer; want 1", n.IdleDrops())
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			got <- err
		}()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("read after the drop returned %v; want nothing, ever", err)
		default:
		}
		_ = c.Close() // the server side is not told (its pipe closes at n.Close)
		if err := <-got; err == nil {
			t.Fatal("read after close returned no error")
		}
	})
}

func TestNetBlackhole(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := faultproxy.NewNet(4)
		c, s := netPair(t, n)
		go echoAll(s)
		n.Blackhole(true)
		if _, err := c.Write([]byte("lost")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		n.Blackhole(false)
		if got := roundTrip(t, c); got != 0 {
			t.Fatalf("round trip %v after the blackhole; want 0 (no delay set)", got)
		}
	})
}

func TestProxyJitterBounds(t *testing.T) {
	t.Parallel()
	p, err := faultproxy.Start("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetDelay(50 * time.Millisecond)
	p.SetJitter(30 * time.Millisecond)
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := p.ChunkDelay()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 20*time.Millisecond || hi > 80*time.Millisecond || lo > 30*time.Millisecond || hi < 70*time.Millisecond {
		t.Fatalf("delays %v to %v; want 20ms to 80ms, spread across", lo, hi)
	}
	p.SetJitter(0)
	if d := p.ChunkDelay(); d != 50*time.Millisecond {
		t.Fatalf("delay %v without jitter; want 50ms", d)
	}
}

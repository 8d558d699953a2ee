package balancer

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// listen returns a loopback listener that reports the local port of each
// connection it accepts on got.
func listen(t *testing.T, got chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			got <- ln.Addr().String()
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestRoundRobinAndSet(t *testing.T) {
	t.Parallel()
	got := make(chan string, 16)
	a, b, c := listen(t, got), listen(t, got), listen(t, got)
	bal := New(net.Dialer{}, a)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() string {
		t.Helper()
		conn, err := bal.Dial(ctx, "virtual:1")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		select {
		case addr := <-got:
			return addr
		case <-ctx.Done():
			t.Fatal("no connection accepted")
			return ""
		}
	}
	for range 3 {
		if addr := dial(); addr != a {
			t.Fatalf("dialled %s, want the only backend %s", addr, a)
		}
	}
	bal.Set(b, c)
	for i, want := range []string{b, c, b, c} {
		if addr := dial(); addr != want {
			t.Fatalf("dial %d after Set: %s, want %s", i, addr, want)
		}
	}
}

func TestNoBackend(t *testing.T) {
	t.Parallel()
	bal := New(net.Dialer{})
	if _, err := bal.Dial(context.Background(), "virtual:1"); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Dial with no backend: %v, want ErrNoBackend", err)
	}
}

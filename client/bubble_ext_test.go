package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// These tests run in a synctest bubble over bufconn: fake time makes
// "detected after exactly dead_after" exact.

// bbLink is a bufconn path whose bytes can be blackholed in both
// directions (writes succeed, reads never return data), as a NAT that lost
// the mapping would.
type bbLink struct {
	lis   *bufconn.Listener
	black atomic.Bool
}

func (l *bbLink) dial(ctx context.Context, _ string) (net.Conn, error) {
	c, err := l.lis.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	return &bbConn{Conn: c, link: l}, nil
}

type bbConn struct {
	net.Conn
	link *bbLink
}

func (c *bbConn) Write(b []byte) (int, error) {
	if c.link.black.Load() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *bbConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || !c.link.black.Load() {
			return n, err
		}
	}
}

// bbServe starts a tether server on a bufconn listener in the bubble.
func bbServe(t *testing.T, opts ...server.Option) (*server.Server, *bbLink) {
	t.Helper()
	srv, lis := tethertest.ServeBufconn(t, opts...)
	return srv, &bbLink{lis: lis}
}

// bbSession opens an SDK session to the bubble server and records every
// state change with its fake time.
func bbSession(t *testing.T, link *bbLink, opts ...client.Option) (*client.Session, *bbStates) {
	t.Helper()
	rec := &bbStates{}
	opts = append([]client.Option{
		client.WithAddrs("passthrough:///bufnet"),
		client.WithDialOptions(grpc.WithContextDialer(link.dial)),
		client.WithOnState(rec.add),
	}, opts...)
	s, err := client.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		link.black.Store(false)
		_ = s.Close(context.Background())
	})
	return s, rec
}

type bbStates struct {
	mu  sync.Mutex
	all []client.StateChange
}

func (r *bbStates) add(c client.StateChange) {
	r.mu.Lock()
	r.all = append(r.all, c)
	r.mu.Unlock()
}

func (r *bbStates) String() string {
	var b strings.Builder
	for _, c := range r.list() {
		fmt.Fprintf(&b, "\n\t%s %s %s err=%v", c.Time.Format("04:05.000"), c.State, c.Backend, c.Err)
	}
	return b.String()
}

// list returns the changes since the session connected the first time.
func (r *bbStates) list() []client.StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.all {
		if c.State != client.StateConnecting {
			return append([]client.StateChange(nil), r.all[i:]...)
		}
	}
	return nil
}

func TestHeartbeatLossDetectedAtTheNegotiatedBound(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, link := bbServe(t, server.WithProfile(profile.Datacenter()))
		s, rec := bbSession(t, link, client.WithProfile(profile.Datacenter()), client.WithHeartbeat(time.Second))
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Welcome just arrived: the last frame the client read.
		link.black.Store(true)
		start := time.Now()
		for {
			synctest.Wait()
			if all := rec.list(); len(all) >= 2 {
				lost := all[1]
				if lost.State != client.StateReconnecting {
					t.Fatalf("second state = %v", lost.State)
				}
				// dead_after = 1s × 3 misses + 500ms grace (datacenter).
				if got := lost.Time.Sub(start); got != 3500*time.Millisecond {
					t.Fatalf("heartbeat loss detected after %v; want exactly 3.5s", got)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// A slow consumer is sent away with retry_after 1s (no jitter here).
		srv, link := bbServe(t, server.WithMaxOutboundQueue(4), server.WithOverflowPolicy(server.OverflowDisconnect), server.WithDrain(time.Second, 1000, 0))
		s, rec := bbSession(t, link, client.WithClientID("slow"))
		ctx := t.Context()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		// The application never calls Receive, so nothing is acked.
		for range 5 {
			if _, err := srv.Publish(ctx, broker.Client("slow"), []byte("x"), ""); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		time.Sleep(5 * time.Second)
		var cut, back time.Time
		for _, c := range rec.list() {
			switch {
			case c.State == client.StateReconnecting && cut.IsZero():
				cut = c.Time
			case c.State == client.StateConnected && !cut.IsZero() && back.IsZero():
				back = c.Time
				if !c.Resumed {
					t.Fatalf("the slow consumer did not resume: %+v", c)
				}
			}
		}
		if cut.IsZero() || back.IsZero() {
			t.Fatalf("states: %+v", rec.list())
		}
		if d := back.Sub(cut); d != time.Second {
			t.Fatalf("reconnected %v after the go_away; want exactly retry_after, 1s", d)
		}
		// The fifth found the log (4) full: the stream was cut and the
		// oldest dropped to queue it. Whether message 1 reached the
		// client before the cut is a race: if it did, the application
		// still gets it (it was received); if not, the resume reported it
		// lost. Either way 2..5 follow, in order.
		first, err := s.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if first.Seq != 1 && (first.Seq != 2 || !reportedLost(rec.list(), 1)) {
			t.Fatalf("first message %+v: want seq 1, or seq 2 with 1 reported lost; states %+v", first, rec.list())
		}
		for i := first.Seq + 1; i <= 5; i++ {
			m, err := s.Receive(ctx)
			if err != nil || m.Seq != i {
				t.Fatalf("message %d = %+v, %v", i, m, err)
			}
		}
	})
}

// reportedLost reports whether a resume among changes said seq was lost.
func reportedLost(changes []client.StateChange, seq uint64) bool {
	for _, c := range changes {
		if c.Lost != nil && c.Lost.First <= seq && seq <= c.Lost.Last {
			return true
		}
	}
	return false
}

// TestFailoverTimePerProfile measures, in fake time, how long each profile
// takes from a silent death of the backend in use (blackholed: no FIN, no
// RST) to the session running on the other backend: heartbeat detection
// (the server's dead_after), then the first reconnect's backoff (full
// jitter over [0, 1s)), then the new stream.
func TestFailoverTimePerProfile(t *testing.T) {
	t.Parallel()
	for _, p := range []profile.Profile{profile.Datacenter(), profile.Default(), profile.Mobile()} {
		t.Run(p.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, a := bbServe(t, server.WithProfile(p))
				_, b := bbServe(t, server.WithProfile(p))
				links := map[string]*bbLink{"a": a, "b": b}
				rec := &bbStates{}
				s, err := client.New(
					client.WithAddrs("passthrough:///a", "passthrough:///b"),
					client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
						return links[addr].dial(ctx, addr)
					})),
					client.WithProfile(p), client.WithOnState(rec.add))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close(context.Background())
				if err := s.Connect(t.Context()); err != nil {
					t.Fatal(err)
				}
				used := s.Stats().Backend
				links[used[len("passthrough:///"):]].black.Store(true)
				start := time.Now()
				var lost, back time.Time
				for back.IsZero() {
					time.Sleep(50 * time.Millisecond)
					lost = time.Time{}
					for _, c := range rec.list()[1:] { // after the first connect
						switch {
						case c.State == client.StateReconnecting && lost.IsZero():
							lost = c.Time
						case c.State == client.StateConnected && !lost.IsZero() && back.IsZero():
							if c.Backend == used {
								t.Fatalf("failed over to the dead backend %s: %+v", used, rec.list())
							}
							back = c.Time
						}
					}
				}
				detect, failover := lost.Sub(start), back.Sub(start)
				if want := p.Heartbeat.Interval*time.Duration(p.Heartbeat.Misses) + p.Heartbeat.Grace; detect > want {
					t.Fatalf("detected after %v; the profile promises at most %v", detect, want)
				}
				t.Logf("%s: dead link detected after %v, session running on the other backend after %v", p.Name, detect, failover)
				links[used[len("passthrough:///"):]].black.Store(false)
			})
		})
	}
}

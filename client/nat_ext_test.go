package client_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// natLink is an in-memory path through a NAT with an idle timer, for a
// synctest bubble: a connection that carries no byte either way for idle
// loses its mapping, after which the path is a blackhole (writes vanish,
// reads never return), as behind a real NAT.
type natLink struct {
	lis   *bufconn.Listener
	idle  atomic.Int64 // the idle timer of connections dialed from now on; 0: none
	drops atomic.Int64
}

func (l *natLink) dial(ctx context.Context, _ string) (net.Conn, error) {
	c, err := l.lis.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	n := &natConn{Conn: c, idle: time.Duration(l.idle.Load())}
	if n.idle > 0 {
		n.timer = time.AfterFunc(n.idle, func() {
			if n.dropped.CompareAndSwap(false, true) {
				l.drops.Add(1)
			}
		})
	}
	return n, nil
}

type natConn struct {
	net.Conn
	idle    time.Duration
	mu      sync.Mutex
	timer   *time.Timer
	dropped atomic.Bool
}

// active restarts the idle timer, unless the mapping is gone.
func (c *natConn) active() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil && !c.dropped.Load() {
		c.timer.Reset(c.idle)
	}
}

func (c *natConn) Write(b []byte) (int, error) {
	if c.dropped.Load() {
		return len(b), nil
	}
	c.active()
	return c.Conn.Write(b)
}

func (c *natConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil {
			return n, err
		}
		if !c.dropped.Load() {
			c.active()
			return n, nil
		}
	}
}

func (c *natConn) Close() error {
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.Conn.Close()
}

// natIdle is the NAT's idle timer: 30s, common on home routers and
// carrier-grade NATs.
const natIdle = 30 * time.Second

// natSession serves p on a natLink in the bubble and connects a session
// with p through it.
func natSession(t *testing.T, p profile.Profile, opts ...client.Option) (*client.Session, *natLink, *stateLog) {
	t.Helper()
	_, lis := tethertest.ServeBufconn(t, server.WithProfile(p))
	link := &natLink{lis: lis}
	link.idle.Store(int64(natIdle))
	log := newStateLog()
	s, err := client.New(append([]client.Option{client.WithAddrs("passthrough:///bufnet"),
		client.WithDialOptions(grpc.WithContextDialer(link.dial)), client.WithProfile(p), log.option()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, link, log
}

// TestNATIdleTimeout puts a NAT-like idle timer of 30s between client and
// server, in fake time. With the mobile profile (heartbeat 25s) an idle
// session keeps its mapping; with heartbeats (and transport keepalive)
// effectively off, the mapping is dropped after 30s of silence.
func TestNATIdleTimeout(t *testing.T) {
	t.Parallel()
	t.Run("mobile heartbeat keeps the mapping", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			var samples atomic.Int64 // RTTs measured: in fake time a round trip takes 0s
			s, link, log := natSession(t, profile.Mobile(), client.WithClientID("phone"),
				client.WithOnRTT(func(string, time.Duration) { samples.Add(1) }))
			connected, _ := log.await(t, 0, time.Second, "connected", isState(client.StateConnected))
			const hold = 70 * time.Second
			time.Sleep(hold) // fake time: no state change may come in the window
			synctest.Wait()
			if n := log.len(); n != connected+1 {
				t.Fatalf("state changed while idle: %s", log)
			}
			st := s.Stats()
			if link.drops.Load() != 0 || st.Reconnects != 0 || st.State != client.StateConnected {
				t.Fatalf("idle drops %d, stats %+v", link.drops.Load(), st)
			}
			// No idle drop in 70s behind a 30s idle timer proves the
			// heartbeat kept the mapping. The SDK drives the heartbeat (its
			// pongs do not count as writes), so it has measured the RTT (at
			// every 25s ping: twice in 70s).
			if n := samples.Load(); n < 2 {
				t.Fatalf("%d RTT samples on an idle session, want 2 or more: %+v", n, st)
			}
		})
	})
	t.Run("no heartbeat loses the mapping", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			quiet := profile.Mobile()
			quiet.Name = "quiet"
			quiet.Heartbeat.Interval, quiet.Heartbeat.Min, quiet.Heartbeat.Max, quiet.Heartbeat.Misses = 5*time.Minute, 5*time.Minute, 5*time.Minute, 3
			// No transport keepalive traffic in the window either (both
			// Times must also exceed the heartbeat interval for Validate).
			quiet.Client.Time, quiet.Server.Time = 10*time.Minute, 10*time.Minute
			if err := quiet.Validate(); err != nil {
				t.Fatal(err)
			}
			s, link, log := natSession(t, quiet, client.WithClientID("quiet"), client.WithHeartbeat(5*time.Minute))
			start := time.Now()
			time.Sleep(natIdle + 15*time.Second)
			synctest.Wait()
			if n := link.drops.Load(); n != 1 {
				t.Fatalf("%d idle drops %v after connecting, want 1", n, time.Since(start))
			}
			// The session has not noticed (that takes the 15m heartbeat
			// deadline): this is the outage the mobile profile prevents.
			if st := s.Stats(); st.State != client.StateConnected || st.Reconnects != 0 {
				t.Fatalf("stats = %+v; states: %s", st, log)
			}
		})
	})
}

// After a heartbeat timeout the next stream dials a new connection: the
// one that just proved dead (a NAT dropped its mapping; here the link's
// idle timer of 1s) would hang until gRPC's transport keepalive kills it
// (Client.Time + Timeout after the last read: 15s for datacenter), while
// a new dial works at once.
func TestHeartbeatTimeoutDialsAfresh(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dc := profile.Datacenter()
		_, lis := tethertest.ServeBufconn(t, server.WithProfile(dc))
		link := &natLink{lis: lis}
		link.idle.Store(int64(time.Second)) // drops the mapping after 1s of silence
		log := newStateLog()
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(link.dial)),
			client.WithClientID("nat"), fastBackoff, client.WithProfile(dc), client.WithHeartbeat(2*time.Second), log.option())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close(context.Background()) }()
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		link.idle.Store(0) // new connections keep their mappings
		i, lost := log.await(t, 0, time.Minute, "heartbeat timeout", isState(client.StateReconnecting))
		if link.drops.Load() != 1 || !strings.Contains(lost.Err.Error(), "heartbeat timeout") {
			t.Fatalf("reconnecting with %v after %d drops", lost.Err, link.drops.Load())
		}
		_, next := log.await(t, i+1, time.Minute, "next outcome", func(c client.StateChange) bool {
			return c.State == client.StateConnected || c.State == client.StateReconnecting
		})
		if next.State != client.StateConnected || next.Time.Sub(lost.Time) > 2*time.Second || !next.Resumed {
			t.Fatalf("the first attempt after the heartbeat timeout: %v %v, %v later; a fresh connection would have resumed at once", next.State, next.Err, next.Time.Sub(lost.Time))
		}
	})
}

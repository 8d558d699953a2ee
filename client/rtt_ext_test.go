package client_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// jitterSession serves the datacenter profile in the bubble and connects a
// session to it through a faultproxy.Net. The profile's MaxConnectionAge
// is off: its go_away MAX_AGE moves the session every few minutes, which
// would blur what these tests look at.
func jitterSession(t *testing.T, n *faultproxy.Net, opts ...client.Option) (*client.Session, *bbStates) {
	t.Helper()
	dc := profile.Datacenter()
	dc.Server.MaxConnectionAge, dc.Server.MaxConnectionAgeGrace = 0, 0
	_, lis := tethertest.ServeBufconn(t, server.WithProfile(dc))
	rec := &bbStates{}
	s, err := client.New(append([]client.Option{client.WithAddrs("passthrough:///bufnet"),
		client.WithDialOptions(grpc.WithContextDialer(n.Dialer(tethertest.Dialer(lis)))),
		client.WithProfile(dc), client.WithClientID("dc"), client.WithOnState(rec.add)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Blackhole(false)
		_ = s.Close(context.Background())
		n.Close()
	})
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, rec
}

// awaitLoss waits (in fake time) for the first StateReconnecting among
// the state changes from the from-th on, and returns when it came.
func awaitLoss(t *testing.T, rec *bbStates, from int, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		for _, c := range rec.list()[from:] {
			if c.State == client.StateReconnecting {
				return c.Time
			}
		}
	}
	t.Fatalf("no loss detected within %v: %s", within, rec)
	return time.Time{}
}

// TestRTTTimeoutUnderJitter runs the datacenter profile's RTT-derived
// dead-peer timeout over a path with 50ms ± 30ms of one-way delay, in fake
// time: ten minutes without a false positive on either side, then a
// blackhole found within the bound the round trips give, and never later
// than the fixed interval × misses + grace.
func TestRTTTimeoutUnderJitter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := faultproxy.NewNet(7)
		n.SetDelay(50 * time.Millisecond)
		n.SetJitter(30 * time.Millisecond)
		s, rec := jitterSession(t, n)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if st := s.Stats(); st.Reconnects != 0 || st.State != client.StateConnected || len(rec.list()) != 1 {
			t.Fatalf("false positive under jitter: %+v; states %s", st, rec)
		}
		if rtt := s.Stats().RTT; rtt < 40*time.Millisecond || rtt > 160*time.Millisecond {
			t.Fatalf("RTT %v; the path's is 100ms ± 60ms", rtt)
		}
		before := len(rec.list())
		n.Blackhole(true)
		start := time.Now()
		took := awaitLoss(t, rec, before, time.Minute).Sub(start)
		if err := rec.list()[before].Err; !strings.Contains(err.Error(), "heartbeat timeout") {
			t.Fatalf("the stream ended with %v; want a heartbeat timeout", err)
		}
		// 3 × (SRTT + 4·RTTVAR) stays below the 1s floor on this path:
		// dead after interval + floor of silence (the last pong came at
		// most an interval and a round trip before the blackhole).
		dc := profile.Datacenter()
		if took > dc.Heartbeat.Interval+dc.Heartbeat.RTTFloor || took > dc.DetectionTime() {
			t.Fatalf("blackhole detected after %v; want at most interval + floor, %v", took, dc.Heartbeat.Interval+dc.Heartbeat.RTTFloor)
		}
		t.Logf("blackhole detected after %v (fixed rule: %v)", took, dc.DetectionTime())
	})
}

// TestDatacenterDetectsWithin2s: at loopback RTT the datacenter profile
// finds a dead peer in at most 2s once it has measured a round trip.
func TestDatacenterDetectsWithin2s(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := faultproxy.NewNet(8)
		_, rec := jitterSession(t, n)
		time.Sleep(5*time.Second + 300*time.Millisecond) // a few round trips, and off the heartbeat's beat
		n.Blackhole(true)
		start := time.Now()
		if took := awaitLoss(t, rec, 1, time.Minute).Sub(start); took > 2*time.Second {
			t.Fatalf("a dead peer found after %v; want at most 2s", took)
		}
	})
}

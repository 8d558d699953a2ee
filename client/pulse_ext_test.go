package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// pulseLink is a bufconn path that a reset pulse can cut: every connection
// is reset, and new ones are refused until the pulse ends (toxiproxy's
// reset_peer).
type pulseLink struct {
	lis *bufconn.Listener

	mu     sync.Mutex
	refuse bool
	conns  []net.Conn
}

func (l *pulseLink) dial(ctx context.Context, _ string) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse {
		return nil, errors.New("connection refused")
	}
	c, err := l.lis.DialContext(ctx)
	if err == nil {
		l.conns = append(l.conns, c)
	}
	return c, err
}

// pulse resets every connection and refuses new ones while on.
func (l *pulseLink) pulse(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refuse = on
	if on {
		for _, c := range l.conns {
			_ = c.Close()
		}
		l.conns = nil
	}
}

// TestResetPulsesReconnectWithinTwoSeconds cuts every path to three
// backends with twelve 1s reset pulses, 6s apart, in fake time. After each
// pulse the session is back within 2s: its backoff reset after the 5s it
// stayed connected, and the health watches see a backend turn SERVING
// again, which ends the wait. (Before, the backoff reset only after a
// minute connected, so its ceiling grew with every pulse, up to 30s.)
func TestResetPulsesReconnectWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		links := map[string]*pulseLink{}
		var addrs []string
		for _, name := range []string{"a", "b", "c"} {
			_, lis := tethertest.ServeBufconn(t, server.WithProfile(profile.Datacenter()))
			links[name] = &pulseLink{lis: lis}
			addrs = append(addrs, "passthrough:///"+name)
		}
		rec := &bbStates{}
		s, err := client.New(client.WithAddrs(addrs...), client.WithProfile(profile.Datacenter()), client.WithOnState(rec.add),
			client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return links[addr].dial(ctx, addr)
			})))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		var worst time.Duration
		for i := range 12 {
			time.Sleep(5 * time.Second)
			for _, l := range links {
				l.pulse(true)
			}
			time.Sleep(time.Second)
			for _, l := range links {
				l.pulse(false)
			}
			end := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			err := s.Connect(ctx)
			cancel()
			if err != nil {
				t.Fatalf("pulse %d: %v; states:%s", i+1, err, rec)
			}
			back := time.Since(end)
			worst = max(worst, back)
			if back > 2*time.Second {
				t.Fatalf("pulse %d: back %v after it ended; want within 2s; states:%s", i+1, back, rec)
			}
		}
		t.Logf("12 reset pulses of 1s: the session was back at most %v after each", worst)
	})
}

// TestBackoffResetsAfterFiveHealthySeconds grows the backoff of a session
// with one backend (no health watch to end its waits) to a ceiling of 1000s
// through failed attempts, connects, and cuts the stream after the 5s of
// the default ResetAfter: the backoff resets, so the session is back within
// Base (1s), not after a draw below 1000s.
func TestBackoffResetsAfterFiveHealthySeconds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, lis := tethertest.ServeBufconn(t, server.WithProfile(profile.Datacenter()))
		link := &pulseLink{lis: lis}
		bo := backoff.DefaultConfig()
		bo.Multiplier, bo.Cap = 1000, 1000*time.Hour
		rec := &bbStates{}
		s, err := client.New(client.WithAddrs("passthrough:///only"), client.WithProfile(profile.Datacenter()), client.WithBackoff(bo),
			client.WithOnState(rec.add), client.WithDialOptions(grpc.WithContextDialer(link.dial)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		link.pulse(true)
		go s.Connect(t.Context()) //nolint:errcheck // the stats tell
		for s.Stats().Reconnects < 2 {
			time.Sleep(100 * time.Millisecond) // fake time: two failed attempts
		}
		link.pulse(false)
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(bo.ResetAfter)
		cut := time.Now()
		link.pulse(true) // resets the connection
		link.pulse(false)
		synctest.Wait() // the session saw the stream break
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Logf("back %v after the cut", time.Since(cut))
		if back := time.Since(cut); back >= bo.Base {
			t.Fatalf("back %v after the cut of a stream that worked for %v; want below Base, %v; states:%s", back, bo.ResetAfter, bo.Base, rec)
		}
	})
}

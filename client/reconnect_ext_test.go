package client_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/client"
)

// TestEveryAttemptDials checks that each reconnect attempt to a backend that
// refuses connections dials it again, at the session's own backoff pace.
// Left alone, gRPC keeps a connection that failed in TRANSIENT_FAILURE for
// its own reconnect backoff (1s, growing), failing every stream at once
// meanwhile: after a server restart the session's backoff grew while
// gRPC's hid the server that was back (a 10,000-session mass resume took
// 5× as long as fresh clients redialling).
func TestEveryAttemptDials(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections to addr are refused from now on

	var dials atomic.Int64
	dialer := func(ctx context.Context, a string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	}
	log := newStateLog()
	bo := backoff.DefaultConfig()
	bo.Base, bo.Cap, bo.Multiplier = time.Millisecond, time.Millisecond, 1
	s, err := client.New(client.WithAddrs(addr), client.WithBackoff(bo), client.WithDialOptions(grpc.WithContextDialer(dialer)), log.option())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	go s.Connect(t.Context()) //nolint:errcheck // never connects; Close ends it

	const attempts = 6
	at := 0
	for i := range attempts {
		at, _ = log.await(t, at, 30*time.Second, fmt.Sprintf("failed attempt %d", i+1), func(c client.StateChange) bool {
			return c.State == client.StateReconnecting
		})
		at++
	}
	if got := dials.Load(); got < attempts {
		t.Fatalf("%d dials for %d failed attempts: an attempt failed on gRPC's backoff without dialling", got, attempts)
	}
}

// Reconnect before the first stream does not end the first stream. Before
// its fix: Reconnect called before the first stream exists is latched and
// kills the first stream right after its Welcome.
func TestReconnectBeforeConnectIsNotLatched(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, dial := bubbleServer(t)
		s := newSession(t, client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(dial))
		s.Reconnect()
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // fake time: a latched request would have ended the stream
		synctest.Wait()
		if st := s.Stats(); st.Reconnects != 0 {
			t.Fatalf("%d reconnects of a stream that was never in use (last error %v)", st.Reconnects, st.LastError)
		}
	})
}

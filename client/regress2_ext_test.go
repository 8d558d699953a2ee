package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// Bug 1: a session that is busy sending when a newer session takes over its
// client id must close with go_away TAKEN_OVER. Instead, in about a third
// of the tries, the writer's io.EOF from Send becomes the reason, the
// go_away is ignored, the old session reconnects, gets a fresh session
// (CLOSED) and takes the client id back: the NEWER session is kicked.
func TestRegressTakenOverWhileSendingClosesForGood(t *testing.T) {
	srv, addr := tethertest.Serve(t)
	for try := range 100 {
		id := fmt.Sprint("dup", try)
		log := newStateLog()
		old := newSession(t, client.WithAddrs(addr), client.WithClientID(id), fastBackoff, log.option())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := old.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		go func() { // the old session is busy sending
			for old.Send(ctx, client.Message{Topic: "t", Payload: make([]byte, 1024)}) == nil {
			}
		}()
		newLog := newStateLog()
		newer := newSession(t, client.WithAddrs(addr), client.WithClientID(id), fastBackoff, newLog.option())
		if err := newer.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		_, c := log.await(t, 0, waitLong, "closed or reconnecting", func(c client.StateChange) bool {
			return c.State == client.StateClosed || c.State == client.StateReconnecting
		})
		var ga *client.GoAwayError
		if c.State == client.StateClosed && errors.As(c.Err, &ga) && ga.Reason == client.GoAwayTakenOver {
			cancel()
			continue
		}
		// The old session reconnects and takes the client id back.
		_, back := log.await(t, 0, waitLong, "old connected again", func(c client.StateChange) bool {
			return c.State == client.StateConnected && c.ResumeStatus != client.ResumeNotRequested
		})
		_, kicked, _ := newLog.find(0, waitLong, isState(client.StateClosed))
		n, _ := srv.Publish(context.Background(), broker.Client(id), []byte("x"), "")
		t.Fatalf("try %d: the taken-over session went %v with %q instead of closing; it came back (%v) and the newer session ended with %v; the client id now has %d session(s), the old one",
			try, c.State, c.Err, back.ResumeStatus, kicked.Err, n)
	}
}

// Bug 2: after a heartbeat timeout the next stream is opened on the same
// ClientConn, i.e. on the HTTP/2 connection that just proved dead (a NAT
// dropped its mapping; here the proxy's idle timer). It hangs until gRPC's
// transport keepalive kills that connection (Client.Time + Timeout after
// the last read: 15s for datacenter, 90s for mobile), although a new dial
// would have worked at once.
func TestRegressHeartbeatTimeoutDialsAfresh(t *testing.T) {
	_, addr := tethertest.Serve(t, server.WithProfile(profile.Datacenter()))
	p := proxyTo(t, addr)
	p.SetIdleTimeout(time.Second) // drops the mapping after 1s of silence
	log := newStateLog()
	s := newSession(t, client.WithAddrs(p.Addr()), client.WithClientID("nat"), fastBackoff,
		client.WithProfile(profile.Datacenter()), client.WithHeartbeat(2*time.Second), log.option())
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLong, "the mapping is dropped", func() bool { return p.IdleDrops() == 1 })
	p.SetIdleTimeout(0) // new connections keep their mappings
	i, lost := log.await(t, 0, waitLong, "heartbeat timeout", isState(client.StateReconnecting))
	if !strings.Contains(lost.Err.Error(), "heartbeat timeout") {
		t.Fatalf("reconnecting with %v", lost.Err)
	}
	_, next := log.await(t, i+1, 30*time.Second, "next outcome", func(c client.StateChange) bool {
		return c.State == client.StateConnected || c.State == client.StateReconnecting
	})
	if next.State != client.StateConnected || next.Time.Sub(lost.Time) > 2*time.Second {
		t.Fatalf("the first attempt after the heartbeat timeout: %v %v, %v later; a fresh connection would have resumed at once", next.State, next.Err, next.Time.Sub(lost.Time).Round(time.Millisecond))
	}
}

// Bug 3: Connect on a session that has ended returns nil ("connected") about
// half the time: s.connected is still the channel closed by the last
// StateConnected, and Connect's select sees it and s.done both ready.
func TestRegressConnectAfterCloseReportsTheClose(t *testing.T) {
	_, addr := tethertest.Serve(t)
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("c"))
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	nils := 0
	for range 100 {
		if s.Connect(ctx) == nil {
			nils++
		}
	}
	if nils > 0 {
		t.Fatalf("Connect returned nil %d times of 100 on a closed session (state %v)", nils, s.State())
	}
}

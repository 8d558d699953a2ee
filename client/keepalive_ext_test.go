package client_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// countedServer serves a tether server on bufconn in the bubble, counting
// the Connect streams it accepts and the connections dialed to it.
type countedServer struct {
	streams, dials atomic.Int64
	lis            *bufconn.Listener
}

func newCountedServer(t *testing.T, opts ...server.Option) *countedServer {
	t.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	cs := &countedServer{lis: bufconn.Listen(1 << 20)}
	count := func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if strings.HasSuffix(info.FullMethod, "/Connect") {
			cs.streams.Add(1)
		}
		return h(s, ss)
	}
	gs := grpc.NewServer(append(srv.GRPCServerOptions(), grpc.ChainStreamInterceptor(count))...)
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(cs.lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
		_ = srv.Close()
	})
	return cs
}

func (cs *countedServer) dial(ctx context.Context, _ string) (net.Conn, error) {
	cs.dials.Add(1)
	return cs.lis.DialContext(ctx)
}

// A datacenter client (transport keepalive 10s) of a default server
// (keepalive floor 10s: the SDK wants 2 × the floor) used to connect, then
// reconnect at once to raise its keepalive: two streams and a spurious
// reconnect on every first connect. Its 2s heartbeat keeps the connection
// busy, so the connection never pings; the raised keepalive applies from
// the next connection on. One stream, no reconnect, no too_many_pings in
// ten fake minutes; the next stream dials a connection with it.
func TestKeepaliveFloorCostsNoExtraStream(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cs := newCountedServer(t, server.WithProfile(profile.Default()))
		log := newStateLog()
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(cs.dial)),
			client.WithClientID("dc"), client.WithProfile(profile.Datacenter()), log.option())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close(context.Background()) }()
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute) // fake time
		synctest.Wait()
		if n, st := cs.streams.Load(), s.Stats(); n != 1 || st.Reconnects != 0 || st.State != client.StateConnected {
			t.Fatalf("%d streams, stats %+v; want 1 stream and no reconnect; states: %s", n, st, log)
		}
		dials, from := cs.dials.Load(), log.len()
		s.Reconnect()
		_, back := log.await(t, from, time.Minute, "connected again", isState(client.StateConnected))
		if !back.Resumed || cs.streams.Load() != 2 || cs.dials.Load() != dials+1 {
			t.Fatalf("after Reconnect: resumed %v, %d streams, %d dials (was %d); want a resumed stream on a new connection",
				back.Resumed, cs.streams.Load(), cs.dials.Load(), dials)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		for _, c := range log.all() {
			if c.Err != nil && strings.Contains(c.Err.Error(), "too_many_pings") {
				t.Fatalf("too_many_pings: %s", log)
			}
		}
		if st := s.Stats(); st.Reconnects != 1 || st.State != client.StateConnected {
			t.Fatalf("stats %+v; states: %s", st, log)
		}
	})
}

package client_test

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// notServing runs a gRPC server that reports NOT_SERVING for the session
// service (a backend that is starting up or draining) and serves nothing
// else: a session opened there would fail.
func notServing(t *testing.T) string {
	t.Helper()
	hs := health.NewServer()
	hs.SetServingStatus("tether.v1.TetherService", healthpb.HealthCheckResponse_NOT_SERVING)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func TestNotServingBackendIsSkipped(t *testing.T) {
	t.Parallel()
	bad := notServing(t)
	_, good := tethertest.Serve(t)
	ctx := ctxT(t)
	for range 10 {
		s := newSession(t, client.WithAddrs(bad, good))
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Backend != good || st.Reconnects != 0 {
			t.Fatalf("connected to %s after %d reconnects (%v); want %s at once", st.Backend, st.Reconnects, st.LastError, good)
		}
	}
}

func TestDownBackendIsSkipped(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	_, good := tethertest.Serve(t)
	ctx := ctxT(t)
	for range 10 {
		s := newSession(t, client.WithAddrs(down, good))
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Backend != good {
			t.Fatalf("connected to %s", st.Backend)
		}
	}
}

func TestWithDNSName(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	_, port, _ := net.SplitHostPort(addr)
	s := newSession(t, client.WithDNS(net.JoinHostPort("localhost", port)))
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Backend != addr {
		t.Fatalf("connected to %s, want %s (localhost's IPv4 address)", st.Backend, addr)
	}
}

// Any gRPC resolver target works; gRPC's round_robin with health checking
// keeps sessions off a NOT_SERVING address.
func TestWithResolverTarget(t *testing.T) {
	t.Parallel()
	bad := notServing(t)
	_, good := tethertest.Serve(t)
	r := manual.NewBuilderWithScheme("tethertest")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: bad}, {Addr: good}}})
	ctx := ctxT(t)
	for range 5 {
		s := newSession(t, client.WithTarget("tethertest:///fleet"), client.WithDialOptions(grpc.WithResolvers(r)))
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Backend != good {
			t.Fatalf("connected to %s (after %d reconnects: %v), want %s", st.Backend, st.Reconnects, st.LastError, good)
		}
	}
}

// After a stream merely breaks, the session goes back to the node that
// holds it (with the in-memory broker, the only one that can resume it),
// not to a random healthy one.
func TestStreamBreakResumesOnTheSameNode(t *testing.T) {
	t.Parallel()
	_, a := tethertest.Serve(t)
	_, b := tethertest.Serve(t)
	pa, pb := proxyTo(t, a), proxyTo(t, b)
	s := newSession(t, client.WithAddrs(pa.Addr(), pb.Addr()), client.WithClientID("home"), fastBackoff)
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	home := s.Stats().Backend
	path := map[string]interface{ Reset() }{pa.Addr(): pa, pb.Addr(): pb}[home]
	for i := range 10 {
		path.Reset() // only the path in use breaks; the other backend looks healthier now
		for s.Stats().Reconnects <= i || s.State() != client.StateConnected {
			if err := s.Connect(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if st := s.Stats(); st.Backend != home || st.ResumeStatus.String() != "RESUME_STATUS_RESUMED" {
			t.Fatalf("break %d: now on %s (%v); want resumed on %s", i, st.Backend, st.ResumeStatus, home)
		}
	}
}

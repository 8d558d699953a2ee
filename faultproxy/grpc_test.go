package faultproxy_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestGRPCWatchUnavailableAfterReset runs a real grpc-go health server
// behind the proxy and checks that an open Health/Watch stream fails with
// Unavailable when the proxy resets its connection.
func TestGRPCWatchUnavailableAfterReset(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	served := make(chan struct{})
	go func() {
		defer close(served)
		gs.Serve(ln)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})

	p := startProxy(t, ln.Addr().String())
	cc, err := grpc.NewClient(p.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { cc.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	stream, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("first Recv: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first status = %v, want SERVING", resp.GetStatus())
	}
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() = %d, want 1", n)
	}

	p.Reset()
	_, err = stream.Recv()
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("Recv after Reset = %v (code %v), want Unavailable", err, code)
	}
}

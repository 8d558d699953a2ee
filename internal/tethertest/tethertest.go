// Package tethertest starts real tether servers on loopback for tests.
package tethertest

import (
	"net"
	"testing"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/server"
)

// Serve starts a tether server with opts on a *grpc.Server that listens on
// 127.0.0.1 on an ephemeral port, and returns it with its address. The
// server is stopped and closed when the test ends.
func Serve(t testing.TB, opts ...server.Option) (*server.Server, string) {
	t.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
		_ = srv.Close()
	})
	return srv, lis.Addr().String()
}

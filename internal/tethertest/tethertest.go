// Package tethertest starts real tether servers on loopback for tests.
package tethertest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/server"
)

// Serve starts a tether server with opts on a *grpc.Server that listens on
// 127.0.0.1 on an ephemeral port, and returns it with its address. The
// server is stopped and closed when the test ends.
func Serve(t testing.TB, opts ...server.Option) (*server.Server, string) {
	t.Helper()
	n := StartNode(t, nil, opts...)
	return n.Server, n.Addr
}

// ServeGRPC serves gs on 127.0.0.1 on an ephemeral port and returns a
// plaintext client connection to it. When the test ends the connection is
// closed and gs stopped, and ServeGRPC's goroutine has returned.
func ServeGRPC(t testing.TB, gs *grpc.Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		gs.Stop()
		<-served
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		gs.Stop()
		<-served
	})
	return cc
}

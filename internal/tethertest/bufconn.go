package tethertest

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tetherhq/tether/server"
)

// ServeBufconn starts a tether server with opts on an in-memory bufconn
// listener, for tests under testing/synctest (real sockets are not durably
// blocking, so a bubble cannot fake their time; bufconn is built from
// channels and sync.Cond, so it can). Call it inside the bubble; dial the
// listener with grpc.WithContextDialer(Dialer(lis)) and a passthrough:///
// target. Everything is stopped when the test ends.
func ServeBufconn(t testing.TB, opts ...server.Option) (*server.Server, *bufconn.Listener) {
	t.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
		_ = srv.Close()
		_ = lis.Close()
	})
	return srv, lis
}

// Dialer dials lis, for grpc.WithContextDialer.
func Dialer(lis *bufconn.Listener) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
}

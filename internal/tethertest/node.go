package tethertest

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/server"
)

// Node is a tether server on loopback that a test can stop or kill before
// the test ends.
type Node struct {
	Addr   string // host:port it listens on
	Server *server.Server

	gs   *grpc.Server
	done chan struct{} // closed when Serve has returned
	once sync.Once
}

// StartNode starts a tether server with opts on a *grpc.Server (with the
// server's own gRPC options, then gsOpts) that listens on 127.0.0.1 on an
// ephemeral port. It is killed when the test ends, if not stopped or
// killed before.
func StartNode(t testing.TB, gsOpts []grpc.ServerOption, opts ...server.Option) *Node {
	t.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	n := &Node{Server: srv, gs: grpc.NewServer(append(srv.GRPCServerOptions(), gsOpts...)...), done: make(chan struct{})}
	srv.Register(n.gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	n.Addr = lis.Addr().String()
	go func() {
		defer close(n.done)
		_ = n.gs.Serve(lis)
	}()
	t.Cleanup(n.Kill)
	return n
}

// Kill stops the node as a crash would: its connections drop first, with
// no goodbye, then its sessions are gone. Only the first Kill or Stop
// does anything.
func (n *Node) Kill() {
	n.once.Do(func() {
		n.gs.Stop()
		<-n.done
		_ = n.Server.Close()
	})
}

// Stop ends every session at once (the clients see their streams fail),
// then stops serving. Only the first Kill or Stop does anything.
func (n *Node) Stop() {
	n.once.Do(func() {
		_ = n.Server.Close()
		n.gs.Stop()
		<-n.done
	})
}

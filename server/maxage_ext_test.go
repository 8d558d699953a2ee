package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	"github.com/tetherhq/tether/internal/tethertest"
)

// grpc-go hands every stream of one connection the same *peer.Peer, which
// the server relies on to name a connection (its age counts from its
// first stream); streams of another connection get another. A canary for
// grpc-go upgrades.
func TestStreamsOfAConnectionShareItsPeer(t *testing.T) {
	peers := make(chan *peer.Peer, 3)
	a := tethertest.ServeGRPC(t, grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		p, _ := peer.FromContext(ss.Context())
		peers <- p
		return nil
	})))
	b, err := grpc.NewClient(a.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	call := func(cc *grpc.ClientConn) *peer.Peer {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/x.Y/Z")
		if err != nil {
			t.Fatal(err)
		}
		_ = s.CloseSend()
		_ = s.RecvMsg(new(struct{})) // the handler's end
		select {
		case p := <-peers:
			return p
		case <-ctx.Done():
			t.Fatal("the handler did not run")
			return nil
		}
	}
	pa1, pa2, pb := call(a), call(a), call(b)
	if pa1 == nil || pa1 != pa2 {
		t.Fatalf("two streams of one connection got peers %p and %p; want the same pointer", pa1, pa2)
	}
	if pb == pa1 {
		t.Fatal("streams of two connections got the same *peer.Peer; want one each")
	}
}

package server_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// grpc-go hands every stream of one connection the same *peer.Peer, which
// the server relies on to name a connection (its age counts from its
// first stream); streams of another connection get another. A canary for
// grpc-go upgrades.
func TestStreamsOfAConnectionShareItsPeer(t *testing.T) {
	t.Parallel()
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

// A stream opened on an old connection is not sent away at once.
func TestStreamOnAnOldConnectionIsNotSentAwayAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := profile.Datacenter()
		p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 4*time.Second, 10*time.Second
		n := startNodeInBubble(t, server.WithProfile(p))
		c1 := n.dial(t, "")
		w := c1.open(&tetherv1.Hello{})
		for f := c1.next(); f.GetGoAway() == nil; f = c1.next() {
		}
		c1.end()
		start := time.Now()
		c2 := n.dial(t, "") // same *grpc.ClientConn: same HTTP/2 connection
		w2 := c2.open(rvResume(w.GetSessionId(), w.GetResumeToken(), 0))
		if !w2.GetResumed() {
			t.Fatalf("resume on the old connection: %v", w2)
		}
		// The grace (10s) exceeds the age, so the stream gets half the age.
		f := c2.next()
		if f.GetGoAway().GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_MAX_AGE || time.Since(start) < 2*time.Second {
			t.Fatalf("the stream resumed on an old connection got %v %v after Welcome; want GoAway{MAX_AGE} after at least half the max age (2s)", f, time.Since(start))
		}
	})
}

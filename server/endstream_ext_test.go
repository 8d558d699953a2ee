package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// readers counts the goroutines running a stream's reader, and of those
// the ones that are also its gRPC handler goroutine.
func readers() (all, onHandler int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "tether/server.(*stream).read(") {
			continue
		}
		all++
		if strings.Contains(g, "tether/server.(*service).Connect(") {
			onHandler++
		}
	}
	return all, onHandler
}

// awaitReaders waits until want streams' readers run, and returns how
// many of them run on their handler goroutine.
func awaitReaders(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		all, onHandler := readers()
		if all == want {
			return onHandler
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stream readers run, want %d", all, want)
		}
		time.Sleep(time.Millisecond) // polling an observable condition, bounded above
	}
}

// takeOver opens a session for client id x on n, takes it over with a
// second one, and checks that the first stream, idle in Recv, ends with
// the status the server chose.
func takeOver(t *testing.T, n *node) {
	t.Helper()
	c1 := n.dial(t, "")
	c1.open(&tetherv1.Hello{ClientId: "x"})
	c2 := n.dial(t, "")
	c2.open(&tetherv1.Hello{ClientId: "x"})
	if ga := c1.next().GetGoAway(); ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER {
		t.Fatalf("old stream got %v, want go_away TAKEN_OVER", ga)
	}
	c1.expectEnd(codes.Aborted, "taken over")
}

// An idle stream holds one goroutine, its handler's, which reads; the
// server still ends it with the status it chooses (not gRPC's CANCELLED),
// and the goroutine returns. Not parallel: it counts every stream reader
// of the process.
func TestIdleStreamHoldsOneGoroutine(t *testing.T) {
	n := startNode(t)
	takeOver(t, n)
	if on := awaitReaders(t, 1); on != 1 {
		t.Fatalf("the idle stream's reader is not on its handler goroutine (%d of 1)", on)
	}
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "y"})
	if on := awaitReaders(t, 2); on != 2 {
		t.Fatalf("%d of 2 idle streams read on their handler goroutine", on)
	}
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "done"}}})
	c.expectEnd(codes.OK, "")
	awaitReaders(t, 1)
}

// Through grpc.Server.ServeHTTP, whose status writes wait on the
// connection's serving goroutine, a stream keeps a reader goroutine of its
// own, and the handler returns the status. Not parallel: it counts every
// stream reader of the process.
func TestServeHTTPStreamKeepsAReaderGoroutine(t *testing.T) {
	srv, err := server.New(server.WithServerID("http-node"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: gs, Protocols: new(http.Protocols)}
	hs.Protocols.SetUnencryptedHTTP2(true)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		_ = hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http.Server.Serve: %v", err)
		}
		gs.Stop()
		_ = srv.Close()
	})
	n := &node{srv: srv, addr: lis.Addr().String(), cc: cc}
	takeOver(t, n)
	if on := awaitReaders(t, 1); on != 0 {
		t.Fatalf("through ServeHTTP, the stream's reader runs on its handler goroutine")
	}
}

package server_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Serve sessions on loopback, then push a message to a client by its id.
// The client here is the generated stub, as any language would use it.
func Example() {
	srv, err := server.New(server.WithServerID("example"))
	if err != nil {
		panic(err)
	}
	stream, welcome, stop := openExample(srv, "device-7")
	defer stop()
	fmt.Println("resumed:", welcome.GetResumed(), "server:", welcome.GetServerId())

	ctx := context.Background()
	n, _ := srv.Publish(ctx, broker.Client("device-7"), []byte("hello, device"), "")
	fmt.Println("delivered to", n, "session")
	msg, _ := stream.Recv()
	fmt.Printf("seq %d: %s\n", msg.GetMessage().GetSeq(), msg.GetMessage().GetPayload())
	_ = stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: 1}}})
	// Output:
	// resumed: false server: example
	// delivered to 1 session
	// seq 1: hello, device
}

// openExample starts srv, serves it on loopback and opens a session for
// clientID with the generated stub, as a client in any language would: it
// sends Hello and reads Welcome. stop ends the stream and the server.
func openExample(srv *server.Server, clientID string) (tetherv1.TetherService_ConnectClient, *tetherv1.Welcome, func()) {
	if err := srv.Start(context.Background()); err != nil {
		panic(err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go gs.Serve(lis)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := func() {
		cancel()
		_ = cc.Close()
		gs.Stop()
		_ = srv.Close()
	}
	stream, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		panic(err)
	}
	_ = stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{ClientId: clientID}}})
	welcome, err := stream.Recv()
	if err != nil {
		panic(err)
	}
	return stream, welcome.GetWelcome(), stop
}

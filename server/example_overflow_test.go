package server_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Under the default overflow policy, backpressure, a Publish to a session
// whose outbound log is full is refused, not queued: the caller is told
// to retry later. Here the log holds 2 messages and the client reads but
// does not acknowledge them yet.
func ExampleWithOverflowPolicy() {
	srv, err := server.New(server.WithServerID("example"), server.WithMaxOutboundQueue(2),
		server.WithOverflowPolicy(server.OverflowBackpressure))
	if err != nil {
		panic(err)
	}
	stream, welcome, stop := openExample(srv, "sensor-1")
	defer stop()
	fmt.Println("overflow policy:", welcome.GetLimits().GetOverflowPolicy())

	ctx := context.Background()
	for _, p := range []string{"a", "b", "c"} {
		_, err := srv.Publish(ctx, broker.Client("sensor-1"), []byte(p), "")
		fmt.Printf("publish %s: %v, full: %v\n", p, status.Code(err), errors.Is(err, broker.ErrFull))
	}
	for range 2 {
		m, _ := stream.Recv()
		fmt.Printf("seq %d: %s\n", m.GetMessage().GetSeq(), m.GetMessage().GetPayload())
	}
	// The ack empties the log: the retry goes through.
	_ = stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: 2}}})
	for {
		_, err := srv.Publish(ctx, broker.Client("sensor-1"), []byte("c"), "")
		if status.Code(err) != codes.ResourceExhausted {
			break
		}
		time.Sleep(10 * time.Millisecond) // until the ack arrives; a real caller waits the RetryInfo delay
	}
	m, _ := stream.Recv()
	fmt.Printf("seq %d: %s\n", m.GetMessage().GetSeq(), m.GetMessage().GetPayload())
	// Output:
	// overflow policy: OVERFLOW_POLICY_BACKPRESSURE
	// publish a: OK, full: false
	// publish b: OK, full: false
	// publish c: ResourceExhausted, full: true
	// seq 1: a
	// seq 2: b
	// seq 3: c
}

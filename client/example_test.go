package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/server"
)

// exampleServer starts a tether server on loopback for the examples.
func exampleServer() (addr string, stop func()) {
	_, addr, stop = exampleServerWith()
	return addr, stop
}

// exampleServerWith starts a tether server with opts on loopback.
func exampleServerWith(opts ...server.Option) (srv *server.Server, addr string, stop func()) {
	srv, err := server.New(opts...)
	if err != nil {
		panic(err)
	}
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
	return srv, lis.Addr().String(), func() { gs.Stop(); srv.Close() }
}

// A session subscribes to a topic; another sends to it.
func Example() {
	addr, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	listener, err := client.New(client.WithAddrs(addr), client.WithClientID("listener"), client.WithTopics("news"))
	if err != nil {
		panic(err)
	}
	defer listener.Close(ctx)
	if err := listener.Connect(ctx); err != nil {
		panic(err)
	}

	sender, err := client.New(client.WithAddrs(addr), client.WithClientID("sender"))
	if err != nil {
		panic(err)
	}
	defer sender.Close(ctx)
	// SendWait returns once the server has the message.
	if err := sender.SendWait(ctx, client.Message{Topic: "news", Payload: []byte("tether 1.0 released")}); err != nil {
		panic(err)
	}

	m, err := listener.Receive(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s from %s: %s\n", m.Topic, m.SourceClient, m.Payload)
	// Output:
	// news from sender: tether 1.0 released
}

// A service answers requests; a caller waits for the reply.
func ExampleSession_Request() {
	addr, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	svc, _ := client.New(client.WithAddrs(addr), client.WithClientID("upper-svc"), client.WithTopics("svc.upper"))
	defer svc.Close(context.Background())
	if err := svc.Connect(ctx); err != nil {
		panic(err)
	}
	go func() {
		for {
			req, err := svc.Receive(ctx)
			if err != nil {
				return
			}
			_ = svc.Reply(ctx, req, []byte(fmt.Sprintf("%X", req.Payload)))
		}
	}()

	caller, _ := client.New(client.WithAddrs(addr))
	defer caller.Close(context.Background())
	reply, err := caller.Request(ctx, client.Message{Topic: "svc.upper", Payload: []byte("hi")})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", reply.Payload)
	// Output:
	// 6869
}

// Watch the session's state as it connects and closes.
func ExampleWithOnState() {
	addr, stop := exampleServer()
	defer stop()
	done := make(chan struct{})
	s, _ := client.New(client.WithAddrs(addr), client.WithOnState(func(c client.StateChange) {
		fmt.Println(c.State, c.Resumed)
		if c.State == client.StateClosed {
			close(done)
		}
	}))
	ctx := context.Background()
	_ = s.Connect(ctx)
	_ = s.Close(ctx)
	<-done
	// Output:
	// connecting false
	// connected false
	// closed false
}

// The first pick waits (here up to 200ms) for the health of every backend,
// then spreads sessions at random among the healthy ones.
func ExampleWithHealthWait() {
	a, stopA := exampleServer()
	defer stopA()
	b, stopB := exampleServer()
	defer stopB()
	ctx := context.Background()
	s, err := client.New(client.WithAddrs(a, b), client.WithHealthWait(200*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	if err := s.Connect(ctx); err != nil {
		panic(err)
	}
	backend := s.Stats().Backend
	fmt.Println(backend == a || backend == b)
	// Output:
	// true
}

// A message to a client id that is connected nowhere is re-sent, here
// twice in all, then reported: Send's caller learns of the loss without
// waiting for it.
func ExampleWithOnSendError() {
	addr, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	reported := make(chan struct{})
	s, err := client.New(client.WithAddrs(addr), client.WithClientID("sender"),
		client.WithSendRetry(client.SendRetry{MaxAttempts: 2, Within: time.Second,
			Backoff: backoff.Config{Base: 10 * time.Millisecond, Cap: 10 * time.Millisecond, Multiplier: 1}}),
		client.WithOnSendError(func(m client.Message, err error) {
			var se *client.SendError
			if errors.As(err, &se) {
				fmt.Printf("%q to %s: %s after %d attempts\n", m.Payload, m.ClientID, status.Code(err), se.Attempts)
			}
			close(reported)
		}))
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	if err := s.Send(ctx, client.Message{ClientID: "nobody", Payload: []byte("hello")}); err != nil {
		panic(err)
	}
	<-reported
	// Output:
	// "hello" to nobody: NotFound after 2 attempts
}

// refuseAll is an Authorizer that lets nobody connect.
type refuseAll struct{ server.AllowAll }

func (refuseAll) Connect(context.Context) error {
	return status.Error(codes.PermissionDenied, "this principal may not connect")
}

// A server that refuses the session ends it at once: the error is a
// terminal *client.Error, and CodeOf gives its code. A retryable error
// (the server draining, a broken network) would have been retried.
func ExampleCodeOf() {
	_, addr, stop := exampleServerWith(server.WithAuthorizer(refuseAll{}))
	defer stop()

	s, err := client.New(client.WithAddrs(addr))
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	err = s.Connect(context.Background())
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(client.CodeOf(err), e.Terminal(), errors.Is(err, client.ErrClosed))
		fmt.Println(e.Message())
	}
	// Output:
	// PermissionDenied true true
	// this principal may not connect
}

// A session that reads slowly learns at once of the messages the server
// had to drop. Here the server's outbound log holds 2 messages under the
// DROP_OLDEST policy, the session takes 1 unacknowledged at a time, and 6
// messages are published at once: each of them either arrives or is
// reported lost, never both and never neither.
func ExampleWithOnLoss() {
	srv, addr, stop := exampleServerWith(server.WithMaxOutboundQueue(2), server.WithOverflowPolicy(server.OverflowDropOldest))
	defer stop()
	ctx := context.Background()
	losses := make(chan client.Loss, 16)
	s, err := client.New(
		client.WithAddrs(addr),
		client.WithClientID("dashboard"),
		client.WithReceiveWindow(1, 1<<20),
		client.WithOnLoss(func(l client.Loss) { losses <- l }),
	)
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	if err := s.Connect(ctx); err != nil {
		panic(err)
	}
	for i := 1; i <= 6; i++ {
		if _, err := srv.Publish(ctx, broker.Client("dashboard"), []byte(fmt.Sprint(i)), ""); err != nil {
			panic(err)
		}
	}
	fate := map[uint64]string{}
	for last := false; !last; {
		m, err := s.Receive(ctx)
		if err != nil {
			panic(err)
		}
		fate[m.Seq] = "received"
		last = string(m.Payload) == "6" // the newest is never the one dropped
	}
	for len(fate) < 6 {
		l := <-losses
		for seq := l.Range.First; seq <= l.Range.Last; seq++ {
			if fate[seq] != "" {
				fmt.Println("message", seq, "was reported lost after it", fate[seq])
			}
			fate[seq] = "lost"
		}
	}
	fmt.Println("each of the 6 messages arrived or was reported lost:", len(fate) == 6)
	// Output:
	// each of the 6 messages arrived or was reported lost: true
}

// An app goes to the background and comes back: what was pushed to it
// meanwhile waits on the server, and arrives once it resumes.
func ExampleSession_Suspend() {
	srv, addr, stop := exampleServerWith()
	defer stop()
	ctx := context.Background()
	s, err := client.New(client.WithAddrs(addr), client.WithClientID("phone"))
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	if err := s.Connect(ctx); err != nil {
		panic(err)
	}

	s.Suspend() // sceneDidEnterBackground, onStop
	for <-s.States() != client.StateSuspended {
	}
	if _, err := srv.Publish(ctx, broker.Client("phone"), []byte("while you were away"), ""); err != nil {
		panic(err)
	}
	fmt.Println(s.State())

	s.Resume() // sceneWillEnterForeground, onStart
	m, err := s.Receive(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.State(), string(m.Payload))
	// Output:
	// suspended
	// connected while you were away
}

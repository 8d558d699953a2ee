package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLong = 10 * time.Second

func newSession(t *testing.T, opts ...client.Option) *client.Session {
	t.Helper()
	s, err := client.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

func TestSendReceive(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	a := newSession(t, client.WithAddrs(addr), client.WithClientID("a"), client.WithTopics("t"))
	b := newSession(t, client.WithAddrs(addr), client.WithClientID("b"))
	ctx := ctxT(t)
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := b.Send(ctx, client.Message{Topic: "t", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SendWait(ctx, client.Message{ClientID: "a", Payload: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != fmt.Sprintf("m%d", i) || m.Seq != uint64(i+1) || m.SourceClient != "b" {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	if m, err := a.Receive(ctx); err != nil || string(m.Payload) != "last" {
		t.Fatalf("last = %v, %v", m, err)
	}
	if st := a.Stats(); st.State != client.StateConnected || st.Backend != addr || st.SessionID == "" {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRequestReply(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	svc := newSession(t, client.WithAddrs(addr), client.WithClientID("svc"), client.WithTopics("svc.upper"))
	caller := newSession(t, client.WithAddrs(addr), client.WithClientID("caller"))
	ctx := ctxT(t)
	if err := svc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			m, err := svc.Receive(ctx)
			if err != nil {
				return
			}
			_ = svc.Reply(ctx, m, append([]byte("re:"), m.Payload...))
		}
	}()
	r, err := caller.Request(ctx, client.Message{Topic: "svc.upper", Payload: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Payload) != "re:hi" || r.SourceClient != "svc" {
		t.Fatalf("reply = %+v", r)
	}
}

func TestServerPushAndClose(t *testing.T) {
	t.Parallel()
	srv, addr := tethertest.Serve(t)
	var states []client.State
	done := make(chan struct{})
	s, err := client.New(client.WithAddrs(addr), client.WithClientID("d"), client.WithOnState(func(c client.StateChange) {
		states = append(states, c.State)
		if c.State == client.StateClosed {
			close(done)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Publish(ctx, broker.Client("d"), []byte("push"), ""); err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v", n, err)
	}
	if m, err := s.Receive(ctx); err != nil || string(m.Payload) != "push" {
		t.Fatalf("Receive = %v, %v", m, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if len(states) != 3 || states[0] != client.StateConnecting || states[1] != client.StateConnected || states[2] != client.StateClosed {
		t.Fatalf("states = %v", states)
	}
	// Close said goodbye: the session is gone on the server.
	if n, _ := srv.Publish(ctx, broker.Client("d"), []byte("x"), ""); n != 0 {
		t.Fatalf("the session still takes messages after Close")
	}
	if err := s.Send(ctx, client.Message{Topic: "t"}); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

// waitState waits, up to 5s, until s is in state want.
func waitState(t *testing.T, s *client.Session, want client.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want %v", s.State(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

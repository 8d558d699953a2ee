package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// Sessions a real server ends for good: a protocol violation, a takeover.

// A stream the server ends with INVALID_ARGUMENT is not retried forever:
// the session closes with the server's reason.
func TestProtocolErrorClosesTheSession(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t, server.WithMaxTopics(1))
	s := newSession(t, client.WithAddrs(addr), client.WithTopics("a", "b"), fastBackoff) // two topics in Hello: over the limit
	err := s.Connect(ctxT(t))
	if !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), "limit is 1") {
		t.Fatalf("Connect = %v; want ErrClosed with the server's reason", err)
	}
	if st := s.Stats(); st.State != client.StateClosed || st.Reconnects > 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// A session taken over while it sends closes for good with go_away
// TAKEN_OVER. Before its fix: a session that is busy sending when a newer
// session takes over its client id must close with go_away TAKEN_OVER.
// Instead, in about a third of the tries, the writer's io.EOF from Send
// becomes the reason, the go_away is ignored, the old session reconnects,
// gets a fresh session (CLOSED) and takes the client id back: the NEWER
// session is kicked.
func TestTakenOverWhileSendingClosesForGood(t *testing.T) {
	t.Parallel()
	srv, addr := tethertest.Serve(t)
	for try := range 100 {
		id := fmt.Sprint("dup", try)
		log := newStateLog()
		old := newSession(t, client.WithAddrs(addr), client.WithClientID(id), fastBackoff, log.option())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := old.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		go func() { // the old session is busy sending
			for old.Send(ctx, client.Message{Topic: "t", Payload: make([]byte, 1024)}) == nil {
			}
		}()
		newLog := newStateLog()
		newer := newSession(t, client.WithAddrs(addr), client.WithClientID(id), fastBackoff, newLog.option())
		if err := newer.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		_, c := log.await(t, 0, waitLong, "closed or reconnecting", func(c client.StateChange) bool {
			return c.State == client.StateClosed || c.State == client.StateReconnecting
		})
		var ga *client.GoAwayError
		if c.State == client.StateClosed && errors.As(c.Err, &ga) && ga.Reason == client.GoAwayTakenOver {
			cancel()
			continue
		}
		// The old session reconnects and takes the client id back.
		_, back := log.await(t, 0, waitLong, "old connected again", func(c client.StateChange) bool {
			return c.State == client.StateConnected && c.ResumeStatus != client.ResumeNotRequested
		})
		_, kicked, _ := newLog.find(0, waitLong, isState(client.StateClosed))
		n, _ := srv.Publish(context.Background(), broker.Client(id), []byte("x"), "")
		t.Fatalf("try %d: the taken-over session went %v with %q instead of closing; it came back (%v) and the newer session ended with %v; the client id now has %d session(s), the old one",
			try, c.State, c.Err, back.ResumeStatus, kicked.Err, n)
	}
}

// denyConnect is an Authorizer that refuses every session.
type denyConnect struct{ server.AllowAll }

func (denyConnect) Connect(context.Context) error {
	return status.Error(codes.PermissionDenied, "not allowed here")
}

// A client the server's authorization refuses ends at once with a
// terminal *client.Error: one stream, no reconnect loop (before the error
// model: 73 reconnects in 2s with a 50ms backoff cap). Against the real
// server, in fake time, counting the streams it accepts.
func TestRefusedByAuthorizationEndsAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cs := newCountedServer(t, server.WithAuthorizer(denyConnect{}))
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(cs.dial)),
			client.WithClientID("c"), fastBackoff)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close(context.Background()) }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = s.Connect(ctx)
		if !errors.Is(err, client.ErrClosed) || client.CodeOf(err) != codes.PermissionDenied || !client.IsTerminal(err) {
			t.Fatalf("Connect = %v after %d streams; want a terminal PERMISSION_DENIED", err, cs.streams.Load())
		}
		time.Sleep(time.Minute) // fake time
		synctest.Wait()
		if n := cs.streams.Load(); n != 1 {
			t.Fatalf("%d streams, want 1", n)
		}
	})
}

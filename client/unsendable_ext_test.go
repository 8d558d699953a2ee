package client_test

import (
	"errors"
	"testing"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// Messages the server would reject are refused by Send.

// Send refuses a message the server would reject. Before its fix: a message
// the server would reject (oversized, bad topic) is refused by Send,
// instead of ending stream after stream.
func TestPoisonMessageIsRefusedBySend(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t, server.WithMaxMessageBytes(1024))
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("p"), fastBackoff)
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, client.Message{Topic: "t", Payload: make([]byte, 2048)}); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("oversized Send = %v, want ErrTooLarge", err)
	}
	if err := s.Send(ctx, client.Message{Topic: "bad topic", Payload: []byte("x")}); err == nil {
		t.Fatal("Send to a topic with a space succeeded")
	}
	if err := s.Subscribe(ctx, ""); err == nil {
		t.Fatal("Subscribe to an empty topic succeeded")
	}
	if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: []byte("small")}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Reconnects != 0 {
		t.Fatalf("%d reconnects: %v", st.Reconnects, st.LastError)
	}
}

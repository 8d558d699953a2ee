package client_test

import (
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// Subscriptions across reconnects.

// A topic subscribed while no stream carries the session is subscribed
// after the resume. Before its fix: Subscribe while no stream carries the
// session returns nil, but a successful resume ignores Hello.topics: the
// subscription is silently lost.
func TestSubscribeWhileReconnectingIsKept(t *testing.T) {
	t.Parallel()
	srv, addr := tethertest.Serve(t)
	p := proxyTo(t, addr)
	s := newSession(t, client.WithAddrs(p.Addr()), client.WithClientID("dev"), fastBackoff)
	ctx := ctxT(t)
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	p.Refuse(true)
	p.Reset()
	waitState(t, s, client.StateReconnecting)
	if err := s.Subscribe(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	p.Refuse(false)
	waitState(t, s, client.StateConnected)
	if st := s.Stats(); st.ResumeStatus.String() != "RESUME_STATUS_RESUMED" {
		t.Fatalf("not resumed: %v", st.ResumeStatus)
	}
	// The topic is re-subscribed by a frame right after Welcome: it takes
	// effect a moment after the connected state.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, err := srv.Publish(ctx, broker.Topic("news"), []byte("x"), "")
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Subscribe returned nil but the resumed session is not subscribed")
		}
	}
}

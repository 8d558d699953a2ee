package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// flaky is a server Handler that refuses the listed payloads with
// UNAVAILABLE as many times as listed, then handles them, and lists what it
// handled in order.
type flaky struct {
	server.Router
	mu      sync.Mutex
	refuse  map[string]int
	handled []string
}

func (h *flaky) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := string(m.Payload)
	if h.refuse[p] > 0 {
		h.refuse[p]--
		return status.Error(codes.Unavailable, "the broker is unreachable")
	}
	h.handled = append(h.handled, p)
	return nil
}

// A message the server refuses for now is re-sent, with what followed it,
// until handled: every message once, in order, without the application
// doing anything.
func TestRefusedMessagesAreResentInOrder(t *testing.T) {
	h := &flaky{refuse: map[string]int{"m3": 2, "m7": 1}}
	_, addr := tethertest.Serve(t, server.WithHandler(h))
	reg := prometheus.NewRegistry()
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("sender"), client.WithRegisterer(reg))
	ctx := ctxT(t)
	const n = 10
	for i := range n - 1 {
		if err := s.Send(ctx, client.Message{Topic: "t", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: fmt.Appendf(nil, "m%d", n-1)}); err != nil {
		t.Fatalf("SendWait: %v", err)
	}
	h.mu.Lock()
	got := fmt.Sprint(h.handled)
	h.mu.Unlock()
	if want := "[m0 m1 m2 m3 m4 m5 m6 m7 m8 m9]"; got != want {
		t.Fatalf("handled %s; want %s", got, want)
	}
	if r := counter(t, reg, "tether_client_messages_refused_total"); r != 3 {
		t.Fatalf("tether_client_messages_refused_total = %v; want 3", r)
	}
}

// counter returns the value of the counter name gathered from g.
func counter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

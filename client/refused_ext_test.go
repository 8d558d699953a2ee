package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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
	t.Parallel()
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
	if r := counter(t, reg, "tether_client_message_retries_total"); r != 3 {
		t.Fatalf("tether_client_message_retries_total = %v; want 3", r)
	}
}

// A message the server keeps refusing is given up once the retry policy's
// Within has passed without progress, and reported; the messages behind it
// go on, in order.
func TestRefusedMessageIsReportedAfterWithin(t *testing.T) {
	t.Parallel()
	h := &flaky{refuse: map[string]int{"m1": 1 << 30}}
	_, addr := tethertest.Serve(t, server.WithHandler(h))
	reported := make(chan string, 4)
	r := client.DefaultSendRetry()
	r.Within = 300 * time.Millisecond
	s := newSession(t, client.WithAddrs(addr), client.WithSendRetry(r),
		client.WithOnSendError(func(m client.Message, err error) {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("reported %s with %v; want UNAVAILABLE", m.Payload, err)
			}
			reported <- string(m.Payload)
		}))
	ctx := ctxT(t)
	for i := range 3 {
		if err := s.Send(ctx, client.Message{Topic: "t", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: []byte("m3")}); err != nil {
		t.Fatalf("SendWait: %v", err)
	}
	if got := <-reported; got != "m1" {
		t.Fatalf("reported %s; want m1", got)
	}
	h.mu.Lock()
	got := fmt.Sprint(h.handled)
	h.mu.Unlock()
	if want := "[m0 m2 m3]"; got != want {
		t.Fatalf("handled %s; want %s", got, want)
	}
}

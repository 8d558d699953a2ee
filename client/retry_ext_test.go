package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// refusing routes like server.Router, but refuses each message with code
// until it has refused it times times, and records the idempotency key of
// every message it saw, in order.
type refusing struct {
	server.Router
	code  codes.Code
	times int

	mu      sync.Mutex
	keys    []string
	refused map[string]int
}

func (h *refusing) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	h.mu.Lock()
	h.keys = append(h.keys, m.IdempotencyKey)
	n := h.refused[m.IdempotencyKey]
	if n < h.times {
		h.refused[m.IdempotencyKey] = n + 1
	}
	h.mu.Unlock()
	if n < h.times {
		return status.Errorf(h.code, "refused %d of %d", n+1, h.times)
	}
	return h.Router.OnMessage(ctx, s, m)
}

func (h *refusing) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

// fastRetry re-sends at most attempts times in all, within a second.
func fastRetry(attempts int) client.Option {
	return client.WithSendRetry(client.SendRetry{MaxAttempts: attempts, Within: 10 * time.Second,
		Backoff: backoff.Config{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond, Multiplier: 2}})
}

// lossLog records what WithOnSendError reports.
type lossLog struct {
	mu   sync.Mutex
	msgs []client.Message
	errs []error
	grew chan struct{}
}

func newLossLog() *lossLog { return &lossLog{grew: make(chan struct{}, 1)} }

func (l *lossLog) option() client.Option {
	return client.WithOnSendError(func(m client.Message, err error) {
		l.mu.Lock()
		l.msgs, l.errs = append(l.msgs, m), append(l.errs, err)
		l.mu.Unlock()
		select {
		case l.grew <- struct{}{}:
		default:
		}
	})
}

// await waits until n losses were reported and returns them.
func (l *lossLog) await(t *testing.T, n int) ([]client.Message, []error) {
	t.Helper()
	timeout := time.NewTimer(waitLong)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		msgs, errs := append([]client.Message(nil), l.msgs...), append([]error(nil), l.errs...)
		l.mu.Unlock()
		if len(msgs) >= n {
			return msgs, errs
		}
		select {
		case <-l.grew:
		case <-timeout.C:
			t.Fatalf("%d losses reported within %v, want %d", len(msgs), waitLong, n)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
						match = false
					}
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A message the server refuses twice with UNAVAILABLE (the Error frame,
// then the ack that covers it) is re-sent with the same idempotency key
// and handled the third time: the receiver gets it once, Send's caller
// learns nothing, and no loss is reported.
func TestRefusedSendIsRetriedWithItsKey(t *testing.T) {
	t.Parallel()
	h := &refusing{code: codes.Unavailable, times: 2, refused: map[string]int{}}
	_, addr := tethertest.Serve(t, server.WithHandler(h))
	reg := prometheus.NewPedanticRegistry()
	losses := newLossLog()
	rx := newSession(t, client.WithAddrs(addr), client.WithClientID("rx"))
	tx := newSession(t, client.WithAddrs(addr), client.WithClientID("tx"), fastRetry(5), losses.option(), client.WithRegisterer(reg))
	ctx := ctxT(t)
	if err := rx.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, client.Message{ClientID: "rx", Payload: []byte("send")}); err != nil {
		t.Fatal(err)
	}
	if m, err := rx.Receive(ctx); err != nil || string(m.Payload) != "send" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}
	// SendWait waits out the re-sends too.
	if err := tx.SendWait(ctx, client.Message{ClientID: "rx", Payload: []byte("sendwait")}); err != nil {
		t.Fatalf("SendWait = %v; want nil after two refusals and a success", err)
	}
	if m, err := rx.Receive(ctx); err != nil || string(m.Payload) != "sendwait" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}
	keys := h.seen()
	if len(keys) != 6 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] || keys[3] != keys[4] || keys[4] != keys[5] || keys[0] == keys[3] {
		t.Fatalf("the server saw the keys %q; want each message three times with its own key", keys)
	}
	if got := counter(t, reg, "tether_client_message_retries_total"); got != 4 {
		t.Errorf("tether_client_message_retries_total = %v, want 4", got)
	}
	if n, err := testutil.GatherAndCount(reg, "tether_client_messages_failed_total"); err != nil || n != 0 {
		t.Errorf("tether_client_messages_failed_total has %d series (%v); want none: nothing was lost", n, err)
	}
	if err := tx.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := losses.await(t, 0); len(msgs) != 0 {
		t.Fatalf("losses reported: %+v", msgs)
	}
}

// A message Sent to a client id that is connected nowhere (NOT_FOUND, a
// retryable code) is re-sent until SendRetry's bound, then reported to
// WithOnSendError's callback and in the metric; SendWait's gets NOT_FOUND
// at once.
func TestRefusedSendIsReportedAfterTheBound(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	reg := prometheus.NewPedanticRegistry()
	losses := newLossLog()
	tx := newSession(t, client.WithAddrs(addr), client.WithClientID("tx"), fastRetry(3), losses.option(), client.WithRegisterer(reg))
	ctx := ctxT(t)
	if err := tx.Send(ctx, client.Message{ClientID: "nobody", Payload: []byte("lost")}); err != nil {
		t.Fatal(err)
	}
	msgs, errs := losses.await(t, 1)
	var se *client.SendError
	if !errors.As(errs[0], &se) || se.Attempts != 3 || status.Code(errs[0]) != codes.NotFound {
		t.Fatalf("reported %v; want a SendError after 3 attempts with NOT_FOUND", errs[0])
	}
	if m := msgs[0]; m.ClientID != "nobody" || string(m.Payload) != "lost" || m.IdempotencyKey == "" {
		t.Fatalf("reported the message %+v", m)
	}
	// SendWait's caller is there to decide: NOT_FOUND at once.
	err := tx.SendWait(ctx, client.Message{ClientID: "nobody", Payload: []byte("waited")})
	if !errors.As(err, &se) || se.Attempts != 1 || status.Code(err) != codes.NotFound {
		t.Fatalf("SendWait = %v; want a SendError after 1 attempt with NOT_FOUND", err)
	}
	losses.await(t, 2)
	if got := counter(t, reg, "tether_client_messages_failed_total", "reason", "NotFound"); got != 2 {
		t.Errorf(`tether_client_messages_failed_total{reason="NotFound"} = %v, want 2`, got)
	}
	if got := counter(t, reg, "tether_client_message_retries_total"); got != 2 {
		t.Errorf("tether_client_message_retries_total = %v, want 2", got)
	}
}

// A final code is reported at once: no re-send.
func TestRefusedSendWithFinalCodeIsReportedAtOnce(t *testing.T) {
	t.Parallel()
	h := &refusing{code: codes.PermissionDenied, times: 1 << 30, refused: map[string]int{}}
	_, addr := tethertest.Serve(t, server.WithHandler(h))
	reg := prometheus.NewPedanticRegistry()
	losses := newLossLog()
	tx := newSession(t, client.WithAddrs(addr), client.WithClientID("tx"), losses.option(), client.WithRegisterer(reg))
	ctx := ctxT(t)
	err := tx.SendWait(ctx, client.Message{Topic: "secret", Payload: []byte("x")})
	var se *client.SendError
	if !errors.As(err, &se) || se.Attempts != 1 || status.Code(err) != codes.PermissionDenied {
		t.Fatalf("SendWait = %v; want a SendError after 1 attempt with PERMISSION_DENIED", err)
	}
	if _, errs := losses.await(t, 1); !errors.Is(errs[0], err) && errs[0].Error() != err.Error() {
		t.Fatalf("reported %v, SendWait returned %v", errs[0], err)
	}
	if n := len(h.seen()); n != 1 {
		t.Fatalf("the server saw the message %d times; want once", n)
	}
	if got := counter(t, reg, "tether_client_message_retries_total"); got != 0 {
		t.Errorf("tether_client_message_retries_total = %v, want 0", got)
	}
	if got := counter(t, reg, "tether_client_messages_failed_total", "reason", "PermissionDenied"); got != 1 {
		t.Errorf(`tether_client_messages_failed_total{reason="PermissionDenied"} = %v, want 1`, got)
	}
}

// A request the server cannot deliver returns its SendError once the
// re-sends are used up, instead of waiting for the reply until ctx ends.
func TestRequestToNobodyFailsWithItsSendError(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	tx := newSession(t, client.WithAddrs(addr), client.WithClientID("tx"), fastRetry(2))
	_, err := tx.Request(ctxT(t), client.Message{ClientID: "nobody", Payload: []byte("?")})
	var se *client.SendError
	if !errors.As(err, &se) || se.Attempts != 1 || status.Code(err) != codes.NotFound {
		t.Fatalf("Request = %v; want a SendError at once with NOT_FOUND", err)
	}
}

package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// The server→client receive window and the bounded outbound log with its
// overflow policies (frames.proto "Flow control"). The tests run in a
// synctest bubble: noFrame is then exact (nothing more was on its way).

// publishN publishes payloads to session id with Server.Publish, waiting
// after each until the server is idle, so that frame order is fixed.
func publishN(t *testing.T, srv *server.Server, to broker.Address, payloads ...[]byte) {
	t.Helper()
	for _, p := range payloads {
		if _, err := srv.Publish(context.Background(), to, p, ""); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		synctest.Wait()
	}
}

// sized returns n payloads of size bytes, each starting with its number.
func sizedPayloads(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := bytes.Repeat([]byte{'.'}, size)
		copy(p, fmt.Sprint(i+1))
		out[i] = p
	}
	return out
}

// expectSeqs reads messages and checks their seqs are want, in order.
func (c *conn) expectSeqs(want ...uint64) {
	c.t.Helper()
	for _, w := range want {
		if m := c.message(); m.GetSeq() != w {
			c.t.Fatalf("got message %d, want %d", m.GetSeq(), w)
		}
	}
}

func TestReceiveWindowIsNeverExceeded(t *testing.T) {
	t.Parallel()
	t.Run("messages", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			n := startNodeInBubble(t)
			c := n.dial(t, "")
			w := c.open(&tetherv1.Hello{ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 4}})
			if got := w.GetReceiveWindow(); got.GetMessages() != 4 || got.GetBytes() != 1<<20 {
				t.Fatalf("welcome.receive_window = %v; want 4 messages and the default 1 MiB", got)
			}
			publishN(t, n.srv, brokerSession(w.GetSessionId()), sizedPayloads(10, 10)...)
			c.expectSeqs(1, 2, 3, 4)
			c.noFrame() // the window is full
			c.send(ack(2))
			synctest.Wait()
			c.expectSeqs(5, 6)
			c.noFrame()
			c.send(ack(6))
			synctest.Wait()
			c.expectSeqs(7, 8, 9, 10)
		})
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			n := startNodeInBubble(t)
			c := n.dial(t, "")
			w := c.open(&tetherv1.Hello{ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 100, Bytes: 1000}})
			if got := w.GetReceiveWindow(); got.GetMessages() != 100 || got.GetBytes() != 1000 {
				t.Fatalf("welcome.receive_window = %v; want 100 messages, 1000 bytes", got)
			}
			publishN(t, n.srv, brokerSession(w.GetSessionId()), sizedPayloads(5, 300)...)
			c.expectSeqs(1, 2, 3) // 900 bytes; a fourth would make 1200
			c.noFrame()
			c.send(ack(1))
			synctest.Wait()
			c.expectSeqs(4)
			c.noFrame()
			c.send(ack(4))
			synctest.Wait()
			c.expectSeqs(5)
		})
	})
	t.Run("a message larger than the byte window goes alone", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			n := startNodeInBubble(t)
			c := n.dial(t, "")
			w := c.open(&tetherv1.Hello{ReceiveWindow: &tetherv1.ReceiveWindow{Bytes: 1000}})
			id := brokerSession(w.GetSessionId())
			publishN(t, n.srv, id, make([]byte, 10), make([]byte, 5000), make([]byte, 10))
			c.expectSeqs(1)
			c.noFrame() // 10 + 5000 is over the window: the big one waits
			c.send(ack(1))
			synctest.Wait()
			if m := c.message(); m.GetSeq() != 2 || len(m.GetPayload()) != 5000 {
				t.Fatalf("got %d (%d bytes); want 2, 5000 bytes, alone in flight", m.GetSeq(), len(m.GetPayload()))
			}
			c.noFrame()
			c.send(ack(2))
			synctest.Wait()
			c.expectSeqs(3)
		})
	})
}

// A Hello without a window (a generated stub, grpcurl) gets the default
// one. A client that never acks gets one window and then nothing more; it
// is not cut for it, and its acks let the rest through.
func TestDefaultWindowForAStubThatDoesNotAck(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		c := n.dial(t, "")
		w := c.open(&tetherv1.Hello{ClientId: "stub"})
		if got := w.GetReceiveWindow(); got.GetMessages() != 256 || got.GetBytes() != 1<<20 {
			t.Fatalf("welcome.receive_window = %v; want the default 256 messages, 1 MiB", got)
		}
		publishN(t, n.srv, brokerClient("stub"), sizedPayloads(300, 8)...)
		for i := 1; i <= 256; i++ {
			c.expectSeqs(uint64(i))
		}
		c.noFrame()
		time.Sleep(30 * time.Second) // fake time: far past any ack timer
		c.noFrame()                  // not cut, nothing more
		c.send(ack(256))
		synctest.Wait()
		for i := 257; i <= 300; i++ {
			c.expectSeqs(uint64(i))
		}
	})
}

// A Hello's window is clamped into the log's bounds.
func TestReceiveWindowIsClamped(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxOutboundQueue(64), server.WithMaxOutboundBytes(4096))
	for _, tc := range []struct {
		ask, want *tetherv1.ReceiveWindow
	}{
		{&tetherv1.ReceiveWindow{Messages: 1 << 30, Bytes: 1 << 31}, &tetherv1.ReceiveWindow{Messages: 64, Bytes: 4096}},
		{nil, &tetherv1.ReceiveWindow{Messages: 64, Bytes: 4096}},
		{&tetherv1.ReceiveWindow{Messages: 1, Bytes: 1}, &tetherv1.ReceiveWindow{Messages: 1, Bytes: 1}},
	} {
		c := n.dial(t, "")
		w := c.open(&tetherv1.Hello{ReceiveWindow: tc.ask})
		if got := w.GetReceiveWindow(); got.GetMessages() != tc.want.GetMessages() || got.GetBytes() != tc.want.GetBytes() {
			t.Errorf("asked %v: granted %v; want %v", tc.ask, got, tc.want)
		}
		c.close()
	}
}

// A reader that keeps up (acks every half window, as the SDK does) is
// never cut and loses nothing, however fast the producer: when the log is
// full the producer is told to retry (backpressure), not the reader cut.
func TestReaderThatKeepsUpIsNeverCut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		n := startNodeInBubble(t, server.WithRegisterer(reg), server.WithMaxOutboundQueue(512))
		c := n.dial(t, "")
		c.open(&tetherv1.Hello{ClientId: "reader"})
		const total = 5000
		done := make(chan int)
		go func() { // the producer, flat out; it retries what is refused
			retries := 0
			for i := 1; i <= total; {
				_, err := n.srv.Publish(context.Background(), brokerClient("reader"), []byte(fmt.Sprint(i)), "")
				switch {
				case errors.Is(err, broker.ErrFull) && status.Code(err) == codes.ResourceExhausted:
					retries++
					time.Sleep(time.Millisecond)
				case err != nil:
					t.Errorf("Publish %d: %v", i, err)
					close(done)
					return
				default:
					i++
				}
			}
			done <- retries
		}()
		for i := 1; i <= total; i++ {
			f := c.next()
			for f.GetAck() != nil {
				f = c.next()
			}
			m := f.GetMessage()
			if m == nil || m.GetSeq() != uint64(i) || string(m.GetPayload()) != fmt.Sprint(i) {
				t.Fatalf("frame %d: %v; want message %d (no gap, no go_away)", i, f, i)
			}
			if i%128 == 0 || i == total {
				c.send(ack(uint64(i)))
			}
		}
		retries := <-done
		c.noFrame()
		if got := gauge(t, reg, "tether_go_aways_total", "reason", "slow_consumer"); got > 0 {
			t.Fatalf("%v slow-consumer go_aways", got)
		}
		if got := gauge(t, reg, "tether_outbound_refused_total", "policy", "backpressure"); got != float64(retries) {
			t.Fatalf("tether_outbound_refused_total = %v; want the %d refusals the producer saw", got, retries)
		}
		t.Logf("%d messages, the producer was refused %d times", total, retries)
	})
}

// Backpressure: a client message for a full client id is refused (Error
// RESOURCE_EXHAUSTED, no ack); its re-send once the receiver acked is
// delivered, once.
func TestBackpressureRefusesAClientMessage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		n := startNodeInBubble(t, server.WithMaxOutboundQueue(4), server.WithRegisterer(reg))
		b := n.dial(t, "")
		b.open(&tetherv1.Hello{ClientId: "b"})
		a := n.dial(t, "")
		a.open(&tetherv1.Hello{ClientId: "a"})
		to := func(seq uint64) *tetherv1.ConnectRequest {
			return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
				Seq: seq, Target: &tetherv1.ClientMessage_ClientId{ClientId: "b"}, Payload: []byte(fmt.Sprint(seq)), AckNow: true}}}
		}
		for seq := uint64(1); seq <= 4; seq++ {
			a.send(to(seq))
		}
		synctest.Wait()
		b.expectSeqs(1, 2, 3, 4) // b's log is full: 4 unacknowledged
		a.send(to(5))
		synctest.Wait()
		var refusal *tetherv1.Error
		for refusal == nil {
			f := a.next()
			if f.GetAck().GetSeq() > 4 {
				t.Fatalf("message 5 acked while refused: %v", f)
			}
			refusal = f.GetError()
		}
		if refusal.GetSeq() != 5 || codes.Code(refusal.GetCode()) != codes.ResourceExhausted ||
			!contains(refusal.GetMessage(), "max_outbound_queue 4") || !contains(refusal.GetMessage(), "retry later") {
			t.Fatalf("refusal = %v; want RESOURCE_EXHAUSTED for seq 5 naming the limit", refusal)
		}
		b.noFrame()
		if got := gauge(t, reg, "tether_outbound_refused_total", "policy", "backpressure"); got != 1 {
			t.Fatalf("tether_outbound_refused_total = %v; want 1", got)
		}
		// The receiver reads on; the sender re-sends (go-back-N).
		b.send(ack(4))
		synctest.Wait()
		a.send(to(5))
		synctest.Wait()
		if m := b.message(); m.GetSeq() != 5 || string(m.GetPayload()) != "5" {
			t.Fatalf("b got %v; want message 5 once", m)
		}
		b.noFrame()
		for {
			if ak := a.ackFrame(); ak.GetSeq() == 5 {
				break
			}
		}
	})
}

// Backpressure: Publish to a full session is RESOURCE_EXHAUSTED with a
// RetryInfo detail; nothing is queued.
func TestBackpressurePublishHasRetryInfo(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxOutboundQueue(2))
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "full"})
	n.publishTo(t, "full", "1", "2")
	_, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{
		Target: &tetherv1.PublishRequest_ClientId{ClientId: "full"}, Payload: []byte("3")})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !contains(st.Message(), "outbound log") {
		t.Fatalf("Publish to a full client id: %v; want RESOURCE_EXHAUSTED", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay <= 0 {
		t.Fatalf("details %v; want a RetryInfo with a delay", st.Details())
	}
	c.expectSeqs(1, 2)
	c.send(ack(2))
	waitFor(t, func() bool { return acked(t, n, "full") == 2 })
	n.publishTo(t, "full", "3")
	if m := c.message(); m.GetSeq() != 3 || string(m.GetPayload()) != "3" {
		t.Fatalf("after the ack: %v; want message 3", m)
	}
}

// Backpressure: a topic message cannot wait for its slowest subscriber;
// the full one drops its oldest, and a Gap says which, at once.
func TestBackpressureTopicDropsOldestWithAGap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		n := startNodeInBubble(t, server.WithMaxOutboundQueue(4), server.WithRegisterer(reg))
		c := n.dial(t, "")
		c.open(&tetherv1.Hello{Topics: []string{"news"}})
		publishN(t, n.srv, broker.Topic("news"), sizedPayloads(6, 8)...)
		c.expectSeqs(1, 2, 3, 4) // the window: at most max_outbound_queue
		for _, want := range []uint64{1, 2} {
			g := c.next().GetGap()
			if g.GetLost().GetFirst() != want || g.GetLost().GetLast() != want || !contains(g.GetReason(), "backpressure") {
				t.Fatalf("gap = %v; want lost %d..%d", g, want, want)
			}
		}
		c.noFrame()
		c.send(ack(4))
		synctest.Wait()
		c.expectSeqs(5, 6)
		if got := gauge(t, reg, "tether_outbound_log_drops_total", "policy", "backpressure"); got != 2 {
			t.Fatalf("tether_outbound_log_drops_total = %v; want 2", got)
		}
		c.noFrame()
	})
}

// Drop-oldest: the Gap names exactly the range dropped (here three at once,
// two in flight and one queued, to make room by bytes); the client acks
// past it and the later messages continue.
func TestDropOldestSendsTheExactGap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		n := startNodeInBubble(t, server.WithOverflowPolicy(server.OverflowDropOldest), server.WithMaxOutboundBytes(1000),
			server.WithMaxMessageBytes(1024), server.WithRegisterer(reg))
		c := n.dial(t, "")
		w := c.open(&tetherv1.Hello{ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 2}})
		if w.GetLimits().GetOverflowPolicy() != tetherv1.OverflowPolicy_OVERFLOW_POLICY_DROP_OLDEST || w.GetLimits().GetMaxOutboundBytes() != 1000 {
			t.Fatalf("limits = %v", w.GetLimits())
		}
		id := brokerSession(w.GetSessionId())
		publishN(t, n.srv, id, sizedPayloads(4, 200)...) // 800 bytes held
		c.expectSeqs(1, 2)                               // the window: 2 in flight, 3 and 4 queued
		publishN(t, n.srv, id, sizedPayloads(1, 700)...) // 1..3 must go to make room
		g := c.next().GetGap()
		if g.GetLost().GetFirst() != 1 || g.GetLost().GetLast() != 3 || !contains(g.GetReason(), "drop-oldest") {
			t.Fatalf("gap = %v; want lost 1..3", g)
		}
		c.noFrame()    // 1 and 2 still count against the window
		c.send(ack(3)) // past the gap
		synctest.Wait()
		if m := c.message(); m.GetSeq() != 4 || !bytes.HasPrefix(m.GetPayload(), []byte("4")) {
			t.Fatalf("got %v; want message 4", m)
		}
		c.expectSeqs(5)
		publishN(t, n.srv, id, sizedPayloads(1, 10)...)
		c.noFrame() // 4 and 5 fill the window
		c.send(ack(5))
		synctest.Wait()
		c.expectSeqs(6)
		if got := gauge(t, reg, "tether_outbound_log_drops_total", "policy", "drop-oldest"); got != 3 {
			t.Fatalf("tether_outbound_log_drops_total = %v; want 3", got)
		}
	})
}

// The overflow options are checked by New, and tetherd's flag names parse.
func TestOverflowOptionsAreValidated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opt  server.Option
		want string
	}{
		{server.WithMaxOutboundQueue(0), "WithMaxOutboundQueue"},
		{server.WithMaxOutboundBytes(-1), "WithMaxOutboundBytes"},
		{server.WithOverflowPolicy(0), "WithOverflowPolicy"},
		{server.WithOverflowPolicy(9), "WithOverflowPolicy"},
	} {
		if _, err := server.New(tc.opt); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("New(%s): %v; want an error naming it", tc.want, err)
		}
	}
	for _, p := range []server.OverflowPolicy{server.OverflowBackpressure, server.OverflowDropOldest, server.OverflowDisconnect} {
		text, err := p.MarshalText()
		var back server.OverflowPolicy
		if err != nil || back.UnmarshalText(text) != nil || back != p {
			t.Errorf("%v: %q, %v → %v", p, text, err, back)
		}
	}
	var p server.OverflowPolicy
	if err := p.UnmarshalText([]byte("drop")); err == nil || !contains(err.Error(), "backpressure, drop-oldest or disconnect") {
		t.Errorf("UnmarshalText(drop): %v", err)
	}
}

// Disconnect: a client whose log is full is cut (GoAway SLOW_CONSUMER,
// RESOURCE_EXHAUSTED); its log stays bounded while it is away, and its
// resume names what was dropped and replays the rest within its window.
func TestDisconnectCutsAndTheResumeReportsTheLoss(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		n := startNodeInBubble(t, server.WithOverflowPolicy(server.OverflowDisconnect), server.WithMaxOutboundQueue(4), server.WithRegisterer(reg))
		c := n.dial(t, "")
		w := c.open(&tetherv1.Hello{ClientId: "slow"})
		publishN(t, n.srv, brokerClient("slow"), sizedPayloads(4, 8)...)
		c.expectSeqs(1, 2, 3, 4) // and no ack: the log is full
		publishN(t, n.srv, brokerSession(w.GetSessionId()), sizedPayloads(1, 8)...)
		ga := c.next().GetGoAway()
		if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_SLOW_CONSUMER || !contains(ga.GetMessage(), "max_outbound_queue 4") {
			t.Fatalf("go_away = %v; want SLOW_CONSUMER naming the limit", ga)
		}
		c.expectEnd(codes.ResourceExhausted, "slow consumer")
		publishN(t, n.srv, brokerSession(w.GetSessionId()), sizedPayloads(3, 8)...) // queued while away
		// 8 messages for a log of 4: 1..4 were dropped. The client
		// resumes saying it has 1..2 (its application took no more), so
		// 3..4 are reported lost.
		r := n.dial(t, "")
		h := rvResume(w.GetSessionId(), w.GetResumeToken(), 2)
		h.ReceiveWindow = &tetherv1.ReceiveWindow{Messages: 2}
		w2 := r.open(h)
		if w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP || w2.GetLost().GetFirst() != 3 || w2.GetLost().GetLast() != 4 {
			t.Fatalf("resume = %v; want resumed with lost 3..4 (the client had 1..2)", w2)
		}
		r.expectSeqs(5, 6) // the replay obeys the window
		r.noFrame()
		r.send(ack(6))
		synctest.Wait()
		r.expectSeqs(7, 8)
		if got := gauge(t, reg, "tether_outbound_log_drops_total", "policy", "disconnect"); got != 4 {
			t.Fatalf("tether_outbound_log_drops_total{policy=disconnect} = %v; want 4", got)
		}
		if got := gauge(t, reg, "tether_go_aways_total", "reason", "slow_consumer"); got != 1 {
			t.Fatalf("slow-consumer go_aways = %v; want 1", got)
		}
	})
}

package client

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/backoff"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// noLimits is the limits check of a server without limits.
func noLimits(*tetherv1.ClientMessage) error { return nil }

// attached returns an outbox of size n written by a stream c that resumed
// its session.
func attached(n int, policy FullPolicy) (*outbox, *conn) {
	o, c := &outbox{}, &conn{}
	o.init(n, policy, DefaultSendRetry())
	o.attach(c, true, 0, noLimits)
	return o, c
}

func pushN(t *testing.T, o *outbox, n int) []*pending {
	t.Helper()
	var out []*pending
	for range n {
		p, err := o.push(context.Background(), Message{Topic: "t"}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestOutboxFailFast(t *testing.T) {
	t.Parallel()
	var o outbox
	o.init(2, FailFast, DefaultSendRetry())
	pushN(t, &o, 2)
	if _, err := o.push(context.Background(), Message{Topic: "t"}, nil, false); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("push into a full buffer = %v, want ErrBufferFull", err)
	}
	o.ack(1)
	if _, err := o.push(context.Background(), Message{Topic: "t"}, nil, false); err != nil {
		t.Fatalf("push after an ack freed room = %v", err)
	}
}

func TestOutboxBlockWaitsForRoomOrContext(t *testing.T) {
	t.Parallel()
	var o outbox
	o.init(1, Block, DefaultSendRetry())
	pushN(t, &o, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := o.push(ctx, Message{Topic: "t"}, nil, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked push = %v, want the context's error", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := o.push(context.Background(), Message{Topic: "t"}, nil, false)
		got <- err
	}()
	o.ack(1)
	if err := <-got; err != nil {
		t.Fatalf("push unblocked by an ack = %v", err)
	}
}

func TestOutboxDropOldestKeepsSeqsContiguous(t *testing.T) {
	t.Parallel()
	o, c := attached(3, DropOldest)
	var lost []*pending
	o.lost = func(p *pending, err error) { lost = append(lost, p) }
	ps := pushN(t, o, 3)
	if m := nextFrame(o, c).GetMessage(); m.GetSeq() != 1 { // 1 is written: it must stay
		t.Fatalf("first written seq = %d", m.GetSeq())
	}
	p4 := pushN(t, o, 1)[0]
	// 2, the oldest unwritten, was dropped; 3 and 4 became 2 and 3.
	select {
	case <-o.finished(ps[1]):
		if !errors.Is(ps[1].err, ErrDropped) {
			t.Fatalf("dropped message error = %v", ps[1].err)
		}
	default:
		t.Fatal("the oldest unwritten message was not dropped")
	}
	if len(lost) != 1 || lost[0] != ps[1] {
		t.Fatalf("losses reported: %v; want the dropped message, once", lost)
	}
	if ps[2].msg.GetSeq() != 2 || p4.msg.GetSeq() != 3 {
		t.Fatalf("seqs after the drop: %d, %d; want 2, 3", ps[2].msg.GetSeq(), p4.msg.GetSeq())
	}
	// When everything held was written, nothing can be dropped.
	nextFrame(o, c)
	nextFrame(o, c)
	if _, err := o.push(context.Background(), Message{Topic: "t"}, nil, false); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("push with only written messages held = %v, want ErrBufferFull", err)
	}
}

func TestOutboxResumeAndFreshSession(t *testing.T) {
	t.Parallel()
	var o outbox
	o.init(10, Block, DefaultSendRetry())
	c1 := &conn{}
	o.attach(c1, false, 0, noLimits)
	pushN(t, &o, 4)
	for range 4 {
		o.next(c1)
	}
	// Resumed: the server had 1 and 2, so 3 and 4 are written again.
	c2 := &conn{}
	o.attach(c2, true, 2, noLimits)
	if m := nextFrame(&o, c2).GetMessage(); m.GetSeq() != 3 {
		t.Fatalf("re-send starts at %d, want 3", m.GetSeq())
	}
	// A fresh session: what is held is renumbered from 1.
	c3 := &conn{}
	o.attach(c3, false, 0, noLimits)
	if m := nextFrame(&o, c3).GetMessage(); m.GetSeq() != 1 {
		t.Fatalf("fresh session starts at %d, want 1", m.GetSeq())
	}
	if u, q := o.counts(); u != 1 || q != 1 {
		t.Fatalf("counts = %d unacked, %d queued", u, q)
	}
}

// Messages queued before the first Welcome (limits unknown) that the
// fresh session's limits refuse are lost with ErrTooLarge, reported, and
// never sent; the others are numbered from 1 and sent.
func TestOutboxFreshSessionDropsWhatItsLimitsRefuse(t *testing.T) {
	t.Parallel()
	var o outbox
	o.init(10, Block, DefaultSendRetry())
	var lost []error
	o.lost, o.retried = func(_ *pending, err error) { lost = append(lost, err) }, func() {}
	var ps []*pending
	for _, n := range []int{10, 2000, 20} {
		p, err := o.push(context.Background(), Message{Topic: "t", Payload: make([]byte, n)}, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	c := &conn{}
	o.attach(c, false, 0, func(m *tetherv1.ClientMessage) error {
		return tooLarge(&tetherv1.Limits{MaxMessageBytes: 1000}, m)
	})
	if len(lost) != 1 || !errors.Is(lost[0], ErrTooLarge) || !ps[1].done || !errors.Is(ps[1].err, ErrTooLarge) {
		t.Fatalf("lost %v; the large message done=%v err=%v", lost, ps[1].done, ps[1].err)
	}
	for want := uint64(1); want <= 2; want++ {
		if m := nextFrame(&o, c).GetMessage(); m.GetSeq() != want || len(m.GetPayload()) == 2000 {
			t.Fatalf("sent seq %d with %d bytes, want seq %d", m.GetSeq(), len(m.GetPayload()), want)
		}
	}
	if m := nextFrame(&o, c).GetMessage(); m != nil {
		t.Fatalf("sent %v after the two that fit", m)
	}
}

func TestInboxAcksOnlyWhatTheApplicationTook(t *testing.T) {
	t.Parallel()
	var in inbox
	in.init()
	for seq := uint64(1); seq <= 3; seq++ {
		m := &Message{Seq: seq, Payload: make([]byte, 10*seq)}
		if !in.accept(m) {
			t.Fatalf("seq %d refused", seq)
		}
		in.push(m)
	}
	if in.accept(&Message{Seq: 2}) {
		t.Fatal("a duplicate was accepted")
	}
	if seq, bytes := in.ackable(); seq != 0 || bytes != 0 {
		t.Fatalf("ackable before any Receive = %d, %d bytes", seq, bytes)
	}
	for range 2 {
		if _, err := in.pop(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if seq, bytes := in.ackable(); seq != 2 || bytes != 30 {
		t.Fatalf("ackable after two Receives = %d, %d bytes; want 2, 30", seq, bytes)
	}
}

// A Gap counts its range as received: the application is told only of the
// seqs that had not arrived, later arrivals of the range are duplicates,
// and the ack covers the range once the application took what came
// before it.
func TestInboxGap(t *testing.T) {
	t.Parallel()
	var in inbox
	in.init()
	for seq := uint64(1); seq <= 4; seq++ {
		m := &Message{Seq: seq, Payload: []byte("x")}
		in.accept(m)
		in.push(m)
	}
	if _, ok := in.gap(&tetherv1.SeqRange{First: 2, Last: 3}); ok {
		t.Fatal("a gap of seqs all received was reported as a loss")
	}
	got, ok := in.gap(&tetherv1.SeqRange{First: 3, Last: 9})
	if want := (SeqRange{First: 5, Last: 9}); !ok || got != want {
		t.Fatalf("gap [3, 9] after 4 received = %v, %v; want %v", got, ok, want)
	}
	for _, seq := range []uint64{5, 9} {
		if in.accept(&Message{Seq: seq}) {
			t.Fatalf("seq %d of the gap was accepted after it", seq)
		}
	}
	m10 := &Message{Seq: 10}
	if !in.accept(m10) {
		t.Fatal("seq 10, after the gap, was refused")
	}
	for range 4 {
		if _, err := in.pop(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Received, not yet queued: not the application's yet, so not acked.
	if seq, bytes := in.ackable(); seq != 9 || bytes != 4 {
		t.Fatalf("ackable = %d, %d bytes with seq 10 received, not queued; want 9 (the gap included), 4", seq, bytes)
	}
	in.push(m10)
	if seq, _ := in.ackable(); seq != 9 {
		t.Fatalf("ackable = %d with seq 10 queued, not taken; want 9", seq)
	}
	if _, err := in.pop(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if seq, bytes := in.ackable(); seq != 10 || bytes != 4 {
		t.Fatalf("ackable = %d, %d bytes; want 10, 4", seq, bytes)
	}
}

// A waiter that comes after the ack finds the message done; one that
// comes before is woken by it.
func TestOutboxFinishedBeforeAndAfterAck(t *testing.T) {
	t.Parallel()
	o, c := attached(10, Block)
	ps := pushN(t, o, 2)
	early := o.finished(ps[1])
	nextFrame(o, c)
	nextFrame(o, c)
	o.fail(1, ErrTooLarge)
	o.ack(2)
	for i, ch := range []<-chan struct{}{o.finished(ps[0]), early} {
		select {
		case <-ch:
		default:
			t.Fatalf("message %d: not done after its ack", i+1)
		}
	}
	if !errors.Is(ps[0].err, ErrTooLarge) || ps[1].err != nil {
		t.Fatalf("errors after the ack: %v, %v; want the recorded failure, nil", ps[0].err, ps[1].err)
	}
}

// TestOutboxRefusedIsRequeuedOrLost follows refused messages through the
// outbox in fake time: a retryable refusal waits (counting against the
// buffer), then goes again as the newest message with its key; a refusal
// past MaxAttempts, a final code and Close report the loss once each.
func TestOutboxRefusedIsRequeuedOrLost(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		o, c := &outbox{}, &conn{}
		o.init(3, FailFast, SendRetry{MaxAttempts: 2, Within: time.Hour, Backoff: backoff.Config{Base: time.Second, Cap: time.Second, Multiplier: 1}})
		o.attach(c, true, 0, noLimits)
		lost := map[*pending]error{}
		o.lost = func(p *pending, err error) { lost[p] = err }
		unavailable := status.Error(codes.Unavailable, "route failed")
		writeAll := func() {
			for nextFrame(o, c) != nil {
			}
		}
		ps := pushN(t, o, 2)
		ps[0].msg.IdempotencyKey = "k1"
		writeAll()
		o.fail(1, unavailable)
		o.ack(2)
		if !ps[1].done || ps[0].done || len(lost) != 0 {
			t.Fatalf("after the ack: done %v %v, lost %v; want the refused message waiting", ps[0].done, ps[1].done, lost)
		}
		pushN(t, o, 2) // seqs 3 and 4; the waiting message fills the buffer
		if _, err := o.push(context.Background(), Message{Topic: "t"}, nil, false); !errors.Is(err, ErrBufferFull) {
			t.Fatalf("push into a buffer full with a waiting re-send = %v, want ErrBufferFull", err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := o.items[len(o.items)-1]; got != ps[0] || got.msg.Seq != 5 || got.msg.IdempotencyKey != "k1" {
			t.Fatalf("the re-send is %+v, want the refused message as seq 5 with key k1", got)
		}
		writeAll()
		o.fail(5, unavailable)
		o.ack(5)
		var se *SendError
		if err := lost[ps[0]]; !errors.As(err, &se) || se.Attempts != 2 || !ps[0].done || ps[0].err != err {
			t.Fatalf("after MaxAttempts: lost %v, done %v; want a SendError after 2 attempts", err, ps[0].done)
		}
		final := pushN(t, o, 1)[0]
		writeAll()
		o.fail(6, status.Error(codes.PermissionDenied, "no"))
		o.ack(6)
		if err := lost[final]; !errors.As(err, &se) || se.Attempts != 1 {
			t.Fatalf("a final code: lost %v; want a SendError after 1 attempt", err)
		}
		ps = pushN(t, o, 2)
		writeAll()
		o.fail(7, unavailable)
		o.ack(7) // seq 7 waits for its re-send, seq 8 is written, not acked
		o.close(ErrClosed)
		for i, p := range ps {
			if !errors.Is(lost[p], ErrClosed) || !p.done {
				t.Fatalf("message %d at close: lost %v, done %v; want ErrClosed", i, lost[p], p.done)
			}
		}
		if len(lost) != 4 {
			t.Fatalf("%d losses reported, want 4, each once", len(lost))
		}
		time.Sleep(time.Hour) // a stopped retry never fires
		if len(o.items) != 0 {
			t.Fatalf("the outbox holds %d messages after close", len(o.items))
		}
	})
}

// nextFrame is o.next's frame alone.
func nextFrame(o *outbox, c *conn) *tetherv1.ConnectRequest {
	f, _ := o.next(c)
	return f
}

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Acks of what the application took are sent once half the granted
// receive window (in messages or in bytes) waits to be acked; otherwise
// with the next frame the writer sends anyway (a ping, a pong, messages),
// and ackDelay after the first such message at the latest. The server
// never has more than the window sent and unacked, so acking at half keeps
// at least half a window in flight for a reader that keeps up (it never
// stalls). On a quiet stream an ack only lets the server trim what it
// keeps for a resume (a resume replays from the client's last received
// seq, not from its last ack), so it waits: a subscriber that gets a
// message every second or so sends one ack per two or three messages
// instead of one each, a read per delivery saved on the server (fan-out to
// 10k subscribers: 68-77 -> 51 us of server CPU per delivery, BENCHMARKS.md).
const ackDelay = 2 * time.Second

// errHeartbeat ends a stream on which nothing arrived for dead_after.
var errHeartbeat = errors.New("heartbeat timeout")

// conn is one stream carrying the session. Its writer runs on the
// session's run goroutine, its reader on one more; heartbeats, the
// dead-peer check and delayed acks share one timer.
type conn struct {
	s       *Session
	b       *backend
	stream  tetherv1.TetherService_ConnectClient
	cancel  context.CancelCauseFunc
	backend string
	n       uint64 // the session's streams established, this one included

	ctx     context.Context // ends with the stream
	limiter *rate.Limiter   // paces the writer to the server's frame rate; nil: no limit announced
	// halfMessages and halfBytes are half the granted receive window: an
	// ack is due once that much was taken and not acked.
	halfMessages, halfBytes uint64
	// maxBatch is Welcome.max_batch: the most messages the writer may put
	// in one batch frame (0 or 1: none); maxFrame is
	// Welcome.limits.max_frame_bytes (0: not announced). The writer's own
	// batch frame, reused for every batch, is batch.
	maxBatch, maxFrame int
	batch              batchFrame
	in                 inFrame // what the reader receives each frame into

	mu       sync.Mutex
	ctrl     []*tetherv1.ConnectRequest
	timer    *time.Timer
	tickAt   time.Time // when timer fires next
	ackDue   time.Time
	ackSent  uint64 // the highest seq acked to the server (a resume's Hello included)
	ackBytes uint64 // the epoch's payload bytes through ackSent
	pings    uint64
	barriers map[uint64]chan struct{} // ping id → closed when its pong (or a later one) arrives
	lastPong uint64                   // the highest ping id answered
	pong     *tetherv1.Pong           // the queued, unwritten pong: the server's pings coalesce into it
	goAway   *GoAwayError
	ended    bool // end was called: the timer is stopped for good

	wake      chan struct{}
	done      chan struct{}
	readDone  chan struct{} // closed when the reader has returned
	endOnce   sync.Once
	err       error // why it ended; valid once done is closed
	lastRead  atomic.Int64
	lastWrite atomic.Int64
	pulse     pulse // the heartbeat's interval and dead-after, as they change (rtt.go)
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pushPong queues the answer to the server's ping p. A ping that arrives
// while a pong is still queued updates that pong instead (as the server
// does): a writer held up by flow control never holds more than one.
func (c *conn) pushPong(p *tetherv1.Ping) {
	c.mu.Lock()
	if c.pong != nil {
		c.pong.Id, c.pong.SentAt = p.GetId(), p.GetSentAt()
		c.mu.Unlock()
		return
	}
	c.pong = &tetherv1.Pong{Id: p.GetId(), SentAt: p.GetSentAt()}
	c.ctrl = append(c.ctrl, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: c.pong}})
	c.mu.Unlock()
	c.signal()
}

// pushBarrier queues f (when not nil) and a ping after it, and returns a
// channel that is closed when the pong to that ping (or to a later one)
// arrives. The server handles a stream's frames in order, but coalesces
// pings into a pong it has not written yet: when an earlier ping of this
// stream is unanswered, its queued pong may take the barrier's id and
// arrive ahead of what the server wrote for f. exact reports false then;
// a barrier pushed after the pong arrived is always exact.
func (c *conn) pushBarrier(f *tetherv1.ConnectRequest) (pong <-chan struct{}, exact bool) {
	ch := make(chan struct{})
	c.mu.Lock()
	exact = c.lastPong >= c.pings
	if f != nil {
		c.ctrl = append(c.ctrl, f)
	}
	c.queuePingLocked(time.Now())
	if c.barriers == nil {
		c.barriers = make(map[uint64]chan struct{})
	}
	c.barriers[c.pings] = ch
	c.mu.Unlock()
	c.signal()
	return ch, exact
}

// ponged notes the pong to ping id and releases the barriers up to it.
func (c *conn) ponged(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastPong = max(c.lastPong, id)
	for n, ch := range c.barriers {
		if n <= id {
			close(ch)
			delete(c.barriers, n)
		}
	}
}

func (c *conn) pushCtrl(f *tetherv1.ConnectRequest) {
	c.mu.Lock()
	c.ctrl = append(c.ctrl, f)
	c.mu.Unlock()
	c.signal()
}

// end stops the stream (once) and records why.
func (c *conn) end(err error) {
	c.endOnce.Do(func() {
		c.err = err
		c.mu.Lock()
		c.ended = true
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
		c.cancel(err)
		close(c.done)
	})
}

// healthyFor is how long the stream worked, from since (its Welcome):
// until it ended or, when it ended because it went silent, until the
// last frame read. The session's backoff resets after a stream that
// worked for backoff.Config.ResetAfter.
func (c *conn) healthyFor(since time.Time) time.Duration {
	end := time.Now()
	if errors.Is(c.err, errHeartbeat) {
		end = time.Unix(0, c.lastRead.Load())
	}
	return end.Sub(since)
}

// start queues a first ping, arms the liveness timer from the Welcome's
// numbers (c.pulse, initialised from it) and starts the reader.
func (c *conn) start() {
	now := time.Now().UnixNano()
	interval, _ := c.pulse.get()
	c.lastRead.Store(now)
	// The first ping goes half an interval after the Welcome, as if the
	// last write were half an interval old: ahead of the server's first
	// ping (due an interval after the Welcome), so that the server, which
	// leaves the heartbeat to a client that pings, never pings this one;
	// and not at once, which would add an exchange per session to a
	// reconnect storm, when the server is busiest.
	c.lastWrite.Store(now - int64(interval/2))
	c.mu.Lock()
	if !c.ended {
		c.tickAt = time.Now().Add(interval / 2)
		c.timer = time.AfterFunc(interval/2, c.tick)
	}
	c.mu.Unlock()
	go c.read()
}

func (c *conn) queuePingLocked(now time.Time) {
	c.pings++
	rtt := c.pulse.pinged(now.Sub(c.lastActive()))
	c.ctrl = append(c.ctrl, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: c.pings, SentAt: timestamppb.New(now), Rtt: rtt}}})
}

// tick pings a write-idle stream, ends a silent one and sends a due ack.
func (c *conn) tick() {
	now := time.Now()
	interval, deadAfter := c.pulse.get()
	lastRead := time.Unix(0, c.lastRead.Load())
	lastWrite := time.Unix(0, c.lastWrite.Load())
	if now.Sub(lastRead) >= deadAfter {
		c.s.metrics.deadLinks.Inc()
		c.end(fmt.Errorf("tether/client: %w: nothing received from %s for %v", errHeartbeat, c.backend, now.Sub(lastRead).Round(time.Millisecond)))
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	if now.Sub(lastWrite) >= interval {
		c.queuePingLocked(now)
		lastWrite = now
	}
	if !c.ackDue.IsZero() && !now.Before(c.ackDue) {
		c.queueAckLocked()
	}
	next := earliest(lastWrite.Add(interval), lastRead.Add(deadAfter))
	if !c.ackDue.IsZero() {
		next = earliest(next, c.ackDue)
	}
	c.tickAt = next
	c.timer.Reset(next.Sub(now))
	wake := len(c.ctrl) > 0
	c.mu.Unlock()
	if wake {
		c.signal()
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// noteAckable schedules an ack of what the application has taken: at
// once when half the window waits for it, else with the writer's next
// frame or within ackDelay.
func (c *conn) noteAckable() {
	seq, bytes := c.s.in.ackable()
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq <= c.ackSent || c.timer == nil || c.ended {
		return
	}
	if seq-c.ackSent >= c.halfMessages || bytes >= c.ackBytes+c.halfBytes {
		c.queueAckLocked()
		c.signal()
		return
	}
	if c.ackDue.IsZero() {
		c.ackDue = time.Now().Add(ackDelay)
		if c.ackDue.Before(c.tickAt) {
			c.tickAt = c.ackDue
			c.timer.Reset(ackDelay)
		}
	}
}

func (c *conn) queueAckLocked() {
	c.ackDue = time.Time{}
	seq, bytes := c.s.in.ackable()
	if seq <= c.ackSent {
		return
	}
	c.ackSent, c.ackBytes = seq, bytes
	c.ctrl = append(c.ctrl, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: seq}}})
}

// window takes in the receive window the server granted in w (or, from a
// server that grants none, the one asked for, within its outbound log's
// bounds) and the frame rate it reads at.
func (c *conn) window(w *tetherv1.Welcome, asked *tetherv1.ReceiveWindow) {
	msgs, bytes := w.GetReceiveWindow().GetMessages(), w.GetReceiveWindow().GetBytes()
	if msgs == 0 {
		msgs = asked.GetMessages()
		if q := w.GetLimits().GetMaxOutboundQueue(); q > 0 {
			msgs = min(msgs, q)
		}
	}
	if bytes == 0 {
		bytes = asked.GetBytes()
		if b := w.GetLimits().GetMaxOutboundBytes(); b > 0 {
			bytes = min(bytes, b)
		}
	}
	c.halfMessages, c.halfBytes = max(uint64(msgs)/2, 1), max(uint64(bytes)/2, 1)
	c.maxBatch, c.maxFrame = int(w.GetMaxBatch()), int(w.GetLimits().GetMaxFrameBytes())
	if fps := w.GetLimits().GetMaxFramesPerSecond(); fps > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(fps), max(int(w.GetLimits().GetMaxFrameBurst()), 1))
		// A batch's messages count as frames: one above the burst could
		// never be paced (Welcome.max_batch is within it anyway).
		c.maxBatch = min(c.maxBatch, c.limiter.Burst())
	}
}

// pace waits until the server's frame rate (Welcome.limits
// max_frames_per_second and max_frame_burst) lets the writer send n more
// frames (a batch's messages count one each), so that the server never
// has to read more slowly to hold it back. It reports false when the
// stream ended meanwhile.
func (c *conn) pace(n int) bool {
	if c.limiter == nil || c.limiter.AllowN(time.Now(), n) {
		return true
	}
	return c.limiter.WaitN(c.ctx, n) == nil
}

// write runs the writer until the stream ends: control frames first, then
// the outbox. It is the only caller of stream.Send.
func (c *conn) write() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		for {
			f, n := c.nextFrame()
			if f == nil {
				break
			}
			if !c.pace(max(n, 1)) {
				return
			}
			if err := c.stream.Send(f); err != nil {
				if errors.Is(err, io.EOF) {
					// The server ended the stream; the reader is about to
					// learn why (the status, and any go_away before it).
					<-c.done
					return
				}
				c.end(fmt.Errorf("tether/client: sending to %s: %w", c.backend, err))
				return
			}
			if f.GetPong() == nil {
				// Answering the server's ping does not make this side
				// write-busy: the SDK keeps pinging on its own schedule,
				// so it measures RTT (and the server, whose pongs do
				// count, stops pinging after the first interval).
				c.lastWrite.Store(time.Now().UnixNano())
			}
			if n > 0 {
				c.s.metrics.sent.Add(float64(n))
			}
			select {
			case <-c.done:
				return
			default:
			}
		}
	}
}

// nextFrame returns the next frame to write, control frames first, and
// how many messages it carries; nil when nothing waits.
func (c *conn) nextFrame() (*tetherv1.ConnectRequest, int) {
	c.mu.Lock()
	if len(c.ctrl) > 0 {
		c.ackAlongLocked()
		f := c.ctrl[0]
		c.ctrl[0] = nil
		c.ctrl = c.ctrl[1:]
		if f.GetPong() == c.pong {
			c.pong = nil // written: the next ping gets a pong of its own
		}
		c.mu.Unlock()
		return f, 0
	}
	c.mu.Unlock()
	f, n := c.s.out.next(c)
	if f != nil {
		c.mu.Lock()
		c.ackAlongLocked()
		c.mu.Unlock()
	}
	return f, n
}

// ackAlongLocked queues a delayed ack now, when the writer is sending
// anyway: it goes in the same write, not in one of its own later.
func (c *conn) ackAlongLocked() {
	if !c.ackDue.IsZero() {
		c.queueAckLocked()
	}
}

// read handles every frame until the stream ends.
func (c *conn) read() {
	defer close(c.readDone)
	for {
		err := c.stream.RecvMsg(&c.in)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			c.end(c.endReason(err))
			return
		}
		select {
		case <-c.done:
			return // a frame buffered after the stream ended belongs to no one now
		default:
		}
		c.lastRead.Store(time.Now().UnixNano())
		if c.in.frame == nil {
			for _, m := range c.in.msgs {
				c.take(m)
			}
			continue
		}
		if err := c.handle(c.in.frame); err != nil {
			c.end(err)
			return
		}
	}
}

// endReason turns the stream's final error into the reason the session
// reconnects (or not).
func (c *conn) endReason(err error) error {
	c.mu.Lock()
	ga := c.goAway
	c.mu.Unlock()
	if errors.Is(err, io.EOF) {
		if ga == nil {
			return fmt.Errorf("tether/client: %w: %s", errServerClosed, c.backend)
		}
		err = status.Error(codes.OK, "")
	}
	return streamError(c.backend, err, ga, true)
}

func (c *conn) handle(f *tetherv1.ConnectResponse) error {
	switch x := f.GetFrame().(type) {
	case *tetherv1.ConnectResponse_Ping:
		c.pushPong(x.Ping)
	case *tetherv1.ConnectResponse_Pong:
		c.ponged(x.Pong.GetId())
		if at := x.Pong.GetSentAt(); at.IsValid() {
			if rtt := time.Since(at.AsTime()); rtt >= 0 {
				c.s.noteRTT(c, rtt)
			}
		}
	case *tetherv1.ConnectResponse_Message:
		c.message(x.Message)
	case *tetherv1.ConnectResponse_Batch:
		for _, m := range x.Batch.GetMessages() {
			c.message(m)
		}
	case *tetherv1.ConnectResponse_Gap:
		c.s.gap(c, x.Gap)
	case *tetherv1.ConnectResponse_Ack:
		c.s.out.ack(x.Ack.GetSeq())
	case *tetherv1.ConnectResponse_GoAway:
		c.mu.Lock()
		c.goAway = newGoAwayError(x.GoAway)
		c.mu.Unlock()
		c.s.metrics.goAways.Inc()
	case *tetherv1.ConnectResponse_Error:
		e := status.Error(codes.Code(x.Error.GetCode()), x.Error.GetMessage())
		if id := x.Error.GetRequestId(); id != 0 && c.s.requests.answer(id, x.Error) {
			return nil
		}
		if seq := x.Error.GetSeq(); seq != 0 {
			if refused(e) {
				c.refused(seq, e)
				return nil
			}
			c.s.out.fail(seq, e)
		}
		c.s.cfg.logger.Warn("tether: the server reported an error", "err", e, "seq", x.Error.GetSeq())
	case *tetherv1.ConnectResponse_Welcome:
		return status.Error(codes.Internal, "the server sent a second welcome")
	}
	return nil
}

// message takes in a server message decoded by proto.
func (c *conn) message(pm *tetherv1.ServerMessage) { c.take(fromProto(pm)) }

// take takes in a server message: to the application, or dropped as a
// duplicate.
func (c *conn) take(m *Message) {
	if !c.s.in.accept(m) {
		c.s.metrics.duplicates.Inc()
		c.noteAckable()
		return
	}
	c.s.metrics.received.Inc()
	c.s.deliver(m)
}

// refused reports whether the server's error for a message means it was
// not handled for now and is not acknowledged: the client re-sends it (see
// tether.v1.Error).
func refused(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Canceled:
		return true
	}
	return false
}

// refused re-sends message seq, which the server refused with err, and
// what c wrote after it, once the outbox's retry delay has passed.
func (c *conn) refused(seq uint64, err error) {
	delay, ok := c.s.out.refuse(c, seq, err)
	if !ok {
		return
	}
	c.s.metrics.retries.Inc()
	if delay == 0 {
		c.signal() // given up: the next message goes at once
		return
	}
	time.AfterFunc(delay, func() {
		c.s.out.resume(c)
		c.signal()
	})
}

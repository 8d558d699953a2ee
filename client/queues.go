package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// pending is one sent message waiting for the server's ack. Its fields
// other than msg's payload are guarded by the outbox's mutex.
type pending struct {
	msg tetherv1.ClientMessage // in the same allocation: one per Send
	// frame carries msg on the stream (through in), in the same
	// allocation too: the writer sends it as it is, every time.
	frame tetherv1.ConnectRequest
	in    tetherv1.ConnectRequest_Message
	// to is msg's target, in the same allocation too (see fillProto).
	to target
	// bound bounds msg's encoded size with its seq, as a message frame or
	// in a batch (frameBound); the writer fills batches by it.
	bound int
	done  bool          // handled, or lost for good
	err   error         // before done: the server's refusal of this send, if any; once done: why it was lost
	acked chan struct{} // made for SendWait only; closed when done
	retry *retryState   // from the server's first refusal on
	// waited is set when a caller waits for the outcome (SendWait,
	// Request): it, not a re-send, decides what to do with NOT_FOUND.
	waited bool
}

// finish marks p done with err.
func (p *pending) finish(err error) {
	p.err, p.done = err, true
	if p.acked != nil {
		close(p.acked)
	}
}

// outbox holds what Send queued: written or not, until the server acks it,
// and the messages the server refused, until their re-send is queued.
// Seqs are contiguous: items[i].msg.Seq == acked+1+i.
type outbox struct {
	retry SendRetry
	// lost reports a message lost for good. It is called with mu held: it
	// must not block or call the outbox.
	lost func(p *pending, err error)
	// retried counts a re-send scheduled.
	retried func()

	mu      sync.Mutex
	size    int
	policy  FullPolicy
	seq     uint64 // last seq assigned
	acked   uint64 // last seq the server acked
	written uint64 // last seq written on the current stream
	// handed is the last seq next handed to the current stream's writer:
	// a rewind (refuse) lowers written, but the writer may still be
	// sending what it was handed, so only messages past handed may be
	// renumbered outside next.
	handed  uint64
	items   []*pending
	waiting map[*pending]struct{} // refused, waiting for their re-send; they count against size
	space   chan struct{}         // closed and replaced when room frees
	conn    *conn                 // the stream writing, if any
	closed  error
	// paused holds the writer back after a refusal (see refuse), until
	// the retry is due; refusals counts refusals since the last ack, the
	// first of them at refusedSince.
	paused       bool
	refusals     int
	refusedSince time.Time
	giveUp       *SendError // set when the refused message is to be given up (see refuse)
}

// Refused messages are re-sent after a delay doubling from refuseBase to
// refuseCap with each refusal since the last ack, half of it jittered.
const (
	refuseBase = 25 * time.Millisecond
	refuseCap  = 2 * time.Second
)

func (o *outbox) init(size int, policy FullPolicy, retry SendRetry) {
	o.size, o.policy, o.space, o.retry = size, policy, make(chan struct{}), retry
	o.waiting = make(map[*pending]struct{})
	o.lost, o.retried = func(*pending, error) {}, func() {}
}

// push queues m, applying the full policy;
// waited says that the caller waits for the outcome (SendWait, Request).
func (o *outbox) push(ctx context.Context, m Message, done <-chan struct{}, waited bool) (*pending, error) {
	p := &pending{waited: waited, bound: frameBound(m) + maxSeqBytes}
	fillProto(&p.msg, m, &p.to)
	// A caller waits for the server's ack: the server acks it at once
	// instead of in a batch.
	p.msg.AckNow = waited
	for {
		o.mu.Lock()
		if o.closed != nil {
			o.mu.Unlock()
			return nil, o.closed
		}
		if len(o.items)+len(o.waiting) < o.size || (o.policy == DropOldest && o.dropOldestUnwrittenLocked()) {
			o.appendAndUnlock(p)
			return p, nil
		}
		space := o.space
		o.mu.Unlock()
		if o.policy != Block {
			return nil, ErrBufferFull
		}
		select {
		case <-space:
		case <-done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dropOldestUnwrittenLocked drops the oldest message no stream has written
// and renumbers the ones after it, keeping seqs contiguous. It reports
// false when every message was written already (they must stay for a
// resume).
func (o *outbox) dropOldestUnwrittenLocked() bool {
	i := int(max(o.written, o.handed) - o.acked)
	if i >= len(o.items) {
		return false
	}
	o.loseLocked(o.items[i], ErrDropped)
	o.items = append(o.items[:i], o.items[i+1:]...)
	for _, p := range o.items[i:] {
		p.msg.Seq--
	}
	o.seq--
	return true
}

// next returns the frame of the next messages to write on c, and how many
// it carries: one message in its own frame, or, when the server granted
// batches, as many as wait, in c's batch frame (see batchFrame.fill); nil
// and 0 when none waits.
func (o *outbox) next(c *conn) (*tetherv1.ConnectRequest, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != c || o.paused {
		return nil, 0
	}
	if o.giveUp != nil {
		// The writer is between sends: nothing is in flight, so the
		// messages after the given-up one may be renumbered.
		o.giveUpLocked(int(o.written-o.acked), o.giveUp)
		o.giveUp = nil
	}
	i := int(o.written - o.acked)
	waiting := o.items[min(i, len(o.items)):]
	if len(waiting) == 0 {
		return nil, 0
	}
	var n int
	f := &waiting[0].frame
	if c.maxBatch > 1 && len(waiting) > 1 {
		f, n = c.batch.fill(waiting, c.maxBatch, c.maxFrame)
	} else if f.Frame == nil {
		p := waiting[0]
		p.in.Message = &p.msg
		f.Frame = &p.in
	}
	n = max(n, 1)
	o.written += uint64(n)
	o.handed = max(o.handed, o.written)
	return f, n
}

// finished returns a channel that is closed once p is done; p.err is set
// by then.
func (o *outbox) finished(p *pending) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p.acked == nil {
		p.acked = make(chan struct{})
		if p.done {
			close(p.acked)
		}
	}
	return p.acked
}

// ack drops every message with seq ≤ seq.
func (o *outbox) ack(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ackLocked(seq)
}

func (o *outbox) ackLocked(seq uint64) {
	if seq <= o.acked {
		return
	}
	n := int(min(seq, o.seq) - o.acked)
	for _, p := range o.items[:n] {
		if p.err != nil {
			o.failedLocked(p)
		} else {
			p.finish(nil)
		}
	}
	o.items = o.items[n:]
	o.acked += uint64(n)
	o.refusals = 0
	o.written = max(o.written, o.acked)
	o.handed = max(o.handed, o.acked)
	close(o.space)
	o.space = make(chan struct{})
}

// refuse handles the server's refusal of message seq on c: it could not be
// handled now, and the server dropped what c wrote after it. The writer
// pauses, and rewinds to re-send from seq once the returned delay has
// passed and resume is called (go-back-N: messages keep their order). When
// the server has refused for the retry policy's Within without acking
// anything, or refused with RESOURCE_EXHAUSTED (its target's outbound log
// is full) a message whose caller waits for the outcome (SendWait,
// Request), the message is given up and reported (err in a *SendError),
// and the writer goes on at once with the next: that caller decides
// whether to try again. ok is false when the refusal is stale.
func (o *outbox) refuse(c *conn, seq uint64, err error) (delay time.Duration, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != c || seq <= o.acked || seq > o.written {
		return 0, false
	}
	now := time.Now()
	if o.refusals == 0 {
		o.refusedSince = now
	}
	o.refusals++
	o.written = seq - 1
	waitedFull := o.items[seq-o.acked-1].waited && status.Code(err) == codes.ResourceExhausted
	if waitedFull || now.Sub(o.refusedSince) >= o.retry.Within {
		o.giveUp = &SendError{Attempts: o.refusals, Err: err} // by next, on the writer's goroutine
		return 0, true
	}
	o.paused = true
	d := min(refuseCap, refuseBase<<min(o.refusals-1, 16))
	return d/2 + rand.N(d/2+1), true
}

// giveUpLocked removes the unwritten message at items[i], reports it lost
// with err, and renumbers the ones after it, keeping seqs contiguous. Only
// next calls it, when no message is in flight.
func (o *outbox) giveUpLocked(i int, err error) {
	p := o.items[i]
	o.items = append(o.items[:i], o.items[i+1:]...)
	for _, q := range o.items[i:] {
		q.msg.Seq--
	}
	o.seq--
	o.handed = o.written
	o.loseLocked(p, err)
	close(o.space)
	o.space = make(chan struct{})
}

// resume lets c write again after a refusal's delay.
func (o *outbox) resume(c *conn) {
	o.mu.Lock()
	if o.conn == c {
		o.paused = false
	}
	o.mu.Unlock()
}

// failedLocked handles a message that the server received (acked) but
// failed (see tether.v1.Error): it is re-sent after a backoff, or lost.
func (o *outbox) failedLocked(p *pending) {
	err := p.err
	p.err = nil
	d, lost := o.retry.nextRetry(p, err)
	if lost != nil {
		o.loseLocked(p, lost)
		return
	}
	o.waiting[p] = struct{}{}
	p.retry.timer = time.AfterFunc(d, func() { o.requeue(p) })
	o.retried()
}

// requeue queues a refused message again, as the newest, with a new seq
// and its idempotency key.
func (o *outbox) requeue(p *pending) {
	o.mu.Lock()
	if _, ok := o.waiting[p]; !ok {
		o.mu.Unlock()
		return // closed meanwhile
	}
	delete(o.waiting, p)
	o.appendAndUnlock(p)
}

// appendAndUnlock queues p as the newest message, with the next seq,
// unlocks mu and wakes the writing stream.
func (o *outbox) appendAndUnlock(p *pending) {
	o.seq++
	p.msg.Seq = o.seq
	o.items = append(o.items, p)
	c := o.conn
	o.mu.Unlock()
	if c != nil {
		c.signal()
	}
}

// loseLocked ends p for good with err and reports it.
func (o *outbox) loseLocked(p *pending, err error) {
	p.finish(err)
	o.lost(p, err)
}

// fail records the server's refusal of message seq; the ack that covers
// it (which the server sends after the refusal) retries or loses it.
func (o *outbox) fail(seq uint64, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq > o.acked && seq <= o.seq {
		o.items[seq-o.acked-1].err = err
	}
}

// attach makes c the writing stream after a Welcome. On a resume the
// server's last received seq acks what it has; the rest is re-sent. On a
// fresh session every message still held is renumbered from 1 (their
// idempotency keys let the server drop what it had already).
//
// On a fresh session, a message the server's limits refuse (tooLarge
// returns why; it was queued before the limits were known, or under
// another server's) is lost with that error instead of being sent.
func (o *outbox) attach(c *conn, resumed bool, serverReceived uint64, tooLarge func(*tetherv1.ClientMessage) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if resumed {
		o.ackLocked(serverReceived)
	} else {
		kept := o.items[:0]
		for _, p := range o.items {
			if err := tooLarge(&p.msg); err != nil {
				o.loseLocked(p, err)
				continue
			}
			kept = append(kept, p)
		}
		if len(kept) < len(o.items) {
			clear(o.items[len(kept):])
			close(o.space)
			o.space = make(chan struct{})
		}
		o.items = kept
		for i, p := range o.items {
			p.msg.Seq = uint64(i + 1)
			p.err = nil // a refusal by the old session: it is re-sent anyway
		}
		o.acked, o.seq = 0, uint64(len(o.items))
	}
	o.written, o.handed = o.acked, o.acked
	o.paused, o.giveUp = false, nil
	o.conn = c
}

func (o *outbox) detach(c *conn) {
	o.mu.Lock()
	if o.conn == c {
		o.conn = nil
	}
	o.mu.Unlock()
}

// close fails everything held with err.
func (o *outbox) close(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed != nil {
		return
	}
	o.closed = err
	for _, p := range o.items {
		o.loseLocked(p, err)
	}
	o.items = nil
	for p := range o.waiting {
		p.retry.timer.Stop()
		o.loseLocked(p, err)
	}
	clear(o.waiting)
	close(o.space)
}

// waitEmpty waits until everything held is acked; it reports false if
// stop or timeout fires first.
func (o *outbox) waitEmpty(stop <-chan struct{}, timeout <-chan time.Time) bool {
	for {
		o.mu.Lock()
		empty, space := len(o.items) == 0 && len(o.waiting) == 0, o.space
		o.mu.Unlock()
		if empty {
			return true
		}
		select {
		case <-space:
		case <-stop:
			return false
		case <-timeout:
			return false
		}
	}
}

func (o *outbox) counts() (unacked, queued int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := int(o.written - o.acked)
	return w, len(o.items) - w + len(o.waiting)
}

// target holds a ClientMessage's target: one of its oneof's members, set
// by fillProto.
type target struct {
	topic   tetherv1.ClientMessage_Topic
	session tetherv1.ClientMessage_SessionId
	client  tetherv1.ClientMessage_ClientId
}

// fillProto sets the zero pm from m, its target in to.
func fillProto(pm *tetherv1.ClientMessage, m Message, to *target) {
	pm.Payload = m.Payload
	pm.ContentType = m.ContentType
	pm.Headers = m.Headers
	pm.CorrelationId = m.CorrelationID
	pm.IdempotencyKey = m.IdempotencyKey
	pm.GeneratedKey = m.generatedKey
	switch {
	case m.Topic != "":
		to.topic.Topic = m.Topic
		pm.Target = &to.topic
	case m.SessionID != "":
		to.session.SessionId = m.SessionID
		pm.Target = &to.session
	case m.ClientID != "":
		to.client.ClientId = m.ClientID
		pm.Target = &to.client
	}
}

// sentMessage rebuilds the Message that Send was given from pm, with the
// idempotency key it was sent with. The key is the application's now: if
// it sends the message again, the server checks the key for its whole
// dedupe window.
func sentMessage(pm *tetherv1.ClientMessage) Message {
	m := Message{
		Payload:        pm.GetPayload(),
		ContentType:    pm.GetContentType(),
		Headers:        pm.GetHeaders(),
		CorrelationID:  pm.GetCorrelationId(),
		IdempotencyKey: pm.GetIdempotencyKey(),
	}
	switch t := pm.GetTarget().(type) {
	case *tetherv1.ClientMessage_Topic:
		m.Topic = t.Topic
	case *tetherv1.ClientMessage_SessionId:
		m.SessionID = t.SessionId
	case *tetherv1.ClientMessage_ClientId:
		m.ClientID = t.ClientId
	}
	return m
}

func fromProto(pm *tetherv1.ServerMessage) *Message {
	return &Message{
		Seq:           pm.GetSeq(),
		Topic:         pm.GetTopic(),
		Payload:       pm.GetPayload(),
		ContentType:   pm.GetContentType(),
		Headers:       pm.GetHeaders(),
		CorrelationID: pm.GetCorrelationId(),
		SourceSession: pm.GetSource().GetSessionId(),
		SourceClient:  pm.GetSource().GetClientId(),
		PublishedAt:   pm.GetPublishedAt().AsTime(),
	}
}

// inbox holds received messages until the application takes them. It is
// bounded by the server: the server never has more than the granted
// receive window sent and unacked, and the session acks only what the
// application took.
type inbox struct {
	mu       sync.Mutex
	items    []*Message
	ready    chan struct{} // signalled on push
	received uint64        // highest seq received (or lost in a gap): anything at or below is a duplicate
	bytes    uint64        // payload bytes received in this epoch, through received
	// handed is the highest seq handed on (queued in items, given to a
	// Request, or lost in a gap), and handedBytes the epoch's payload
	// bytes through it: with items empty, what is ackable. A message
	// between accept and push is received but not handed on: acking it
	// then would ack what the application has not taken.
	handed, handedBytes uint64
	epoch               uint32 // counts fresh sessions; items of older ones are not acked
	conn                *conn  // acks go through it
}

func (in *inbox) init() { in.ready = make(chan struct{}, 1) }

// accept reports whether m is new, and records it as received; it sets
// m.through, the epoch's payload bytes through m.
func (in *inbox) accept(m *Message) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if m.Seq <= in.received {
		return false
	}
	in.received = m.Seq
	in.bytes += uint64(len(m.Payload))
	m.through = in.bytes
	return true
}

// gap counts the server's lost range r as received, and returns the part
// of it that had not arrived: messages at or below r.last that arrive
// later are dropped as duplicates.
func (in *inbox) gap(r *tetherv1.SeqRange) (SeqRange, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	lost, ok := unreceived(r, in.received)
	if ok {
		in.received = lost.Last
		in.handed = lost.Last
	}
	return lost, ok
}

func (in *inbox) push(m *Message) {
	in.mu.Lock()
	m.epoch = in.epoch
	in.items = append(in.items, m)
	in.handed, in.handedBytes = m.Seq, m.through
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// consumed takes in m, handed to a Request rather than queued, and tells
// the stream that the ackable seq may have advanced.
func (in *inbox) consumed(m *Message) {
	in.mu.Lock()
	in.handed, in.handedBytes = m.Seq, m.through
	c := in.conn
	in.mu.Unlock()
	if c != nil {
		c.noteAckable()
	}
}

// ackable is the highest seq every message up to which the application
// has taken, and the epoch's payload bytes through it.
func (in *inbox) ackable() (seq, bytes uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.items {
		if m.epoch == in.epoch {
			return m.Seq - 1, m.through - uint64(len(m.Payload))
		}
	}
	return in.handed, in.handedBytes
}

func (in *inbox) pop(ctx context.Context, done <-chan struct{}, closedErr func() error) (*Message, error) {
	for {
		in.mu.Lock()
		if len(in.items) > 0 {
			m := in.items[0]
			in.items[0] = nil
			in.items = in.items[1:]
			more := len(in.items) > 0
			c := in.conn
			in.mu.Unlock()
			if more {
				select {
				case in.ready <- struct{}{}:
				default:
				}
			}
			if c != nil {
				c.noteAckable()
			}
			return m, nil
		}
		in.mu.Unlock()
		select {
		case <-in.ready:
		case <-done:
			return nil, closedErr()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// attach makes c the stream that acks; after a fresh (not resumed)
// session the server numbers from 1 again. On a resume it counts the
// server's lost range as received and returns the part of it that had
// not arrived.
func (in *inbox) attach(c *conn, resumed bool, lost *tetherv1.SeqRange) (SeqRange, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.conn = c
	if !resumed {
		in.received, in.bytes = 0, 0
		in.handed, in.handedBytes = 0, 0
		in.epoch++
		return SeqRange{}, false
	}
	r, ok := unreceived(lost, in.received)
	if ok {
		in.received = r.Last
		in.handed = r.Last
	}
	return r, ok
}

// receivedSeq is the highest seq received in the current epoch.
func (in *inbox) receivedSeq() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.received
}

func (in *inbox) detach(c *conn) {
	in.mu.Lock()
	if in.conn == c {
		in.conn = nil
	}
	in.mu.Unlock()
}

package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// pending is one sent message waiting for the server's ack. Its fields
// other than msg's payload are guarded by the outbox's mutex.
type pending struct {
	msg   tetherv1.ClientMessage // in the same allocation: one per Send
	done  bool                   // acked, dropped or failed by close
	err   error                  // set when done
	acked chan struct{}          // made for SendWait only; closed when done
}

// finish marks p done with err.
func (p *pending) finish(err error) {
	p.err, p.done = err, true
	if p.acked != nil {
		close(p.acked)
	}
}

// outbox holds what Send queued: written or not, until the server acks it.
// Seqs are contiguous: items[i].msg.Seq == acked+1+i.
type outbox struct {
	mu      sync.Mutex
	size    int
	policy  FullPolicy
	seq     uint64 // last seq assigned
	acked   uint64 // last seq the server acked
	written uint64 // last seq written on the current stream
	items   []*pending
	space   chan struct{} // closed and replaced when room frees
	conn    *conn         // the stream writing, if any
	closed  error
	// paused holds the writer back after a refusal (see refuse), until
	// the retry is due; refusals counts refusals since the last ack.
	paused   bool
	refusals int
}

// Refused messages are re-sent after a delay doubling from refuseBase to
// refuseCap with each refusal since the last ack, half of it jittered.
const (
	refuseBase = 25 * time.Millisecond
	refuseCap  = 2 * time.Second
)

func (o *outbox) init(size int, policy FullPolicy) {
	o.size, o.policy, o.space = size, policy, make(chan struct{})
}

// push queues m, applying the full policy.
func (o *outbox) push(ctx context.Context, m Message, done <-chan struct{}) (*pending, error) {
	p := &pending{}
	fillProto(&p.msg, m)
	for {
		o.mu.Lock()
		if o.closed != nil {
			o.mu.Unlock()
			return nil, o.closed
		}
		if len(o.items) < o.size || (o.policy == DropOldest && o.dropOldestUnwrittenLocked()) {
			o.seq++
			p.msg.Seq = o.seq
			o.items = append(o.items, p)
			c := o.conn
			o.mu.Unlock()
			if c != nil {
				c.signal()
			}
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
	i := int(o.written - o.acked)
	if i >= len(o.items) {
		return false
	}
	o.items[i].finish(ErrDropped)
	o.items = append(o.items[:i], o.items[i+1:]...)
	for _, p := range o.items[i:] {
		p.msg.Seq--
	}
	o.seq--
	return true
}

// next returns the next message to write on c, or nil.
func (o *outbox) next(c *conn) *tetherv1.ClientMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != c || o.paused {
		return nil
	}
	i := int(o.written - o.acked)
	if i >= len(o.items) {
		return nil
	}
	o.written++
	return &o.items[i].msg
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
		p.finish(p.err)
	}
	o.items = o.items[n:]
	o.acked += uint64(n)
	o.refusals = 0
	o.written = max(o.written, o.acked)
	close(o.space)
	o.space = make(chan struct{})
}

// refuse handles the server's refusal of message seq on c: it could not be
// handled now, and the server dropped what c wrote after it. The writer
// pauses, and rewinds to re-send from seq once the returned delay has
// passed and resume is called. ok is false when the refusal is stale.
func (o *outbox) refuse(c *conn, seq uint64) (delay time.Duration, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != c || seq <= o.acked || seq > o.written {
		return 0, false
	}
	o.written = seq - 1
	o.paused = true
	d := min(refuseCap, refuseBase<<min(o.refusals, 16))
	o.refusals++
	return d/2 + rand.N(d/2+1), true
}

// resume lets c write again after a refusal's delay.
func (o *outbox) resume(c *conn) {
	o.mu.Lock()
	if o.conn == c {
		o.paused = false
	}
	o.mu.Unlock()
}

// fail records the server's error for message seq; SendWait returns it
// once the message is acked.
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
func (o *outbox) attach(c *conn, resumed bool, serverReceived uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if resumed {
		o.ackLocked(serverReceived)
	} else {
		for i, p := range o.items {
			p.msg.Seq = uint64(i + 1)
		}
		o.acked, o.seq = 0, uint64(len(o.items))
	}
	o.written = o.acked
	o.paused = false
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
		p.finish(err)
	}
	o.items = nil
	close(o.space)
}

// waitEmpty waits until everything held is acked; it reports false if
// stop or timeout fires first.
func (o *outbox) waitEmpty(stop <-chan struct{}, timeout <-chan time.Time) bool {
	for {
		o.mu.Lock()
		empty, space := len(o.items) == 0, o.space
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
	return w, len(o.items) - w
}

// fillProto sets the zero pm from m.
func fillProto(pm *tetherv1.ClientMessage, m Message) {
	pm.Payload = m.Payload
	pm.ContentType = m.ContentType
	pm.Headers = m.Headers
	pm.CorrelationId = m.CorrelationID
	pm.IdempotencyKey = m.IdempotencyKey
	pm.GeneratedKey = m.generatedKey
	switch {
	case m.Topic != "":
		pm.Target = &tetherv1.ClientMessage_Topic{Topic: m.Topic}
	case m.SessionID != "":
		pm.Target = &tetherv1.ClientMessage_SessionId{SessionId: m.SessionID}
	case m.ClientID != "":
		pm.Target = &tetherv1.ClientMessage_ClientId{ClientId: m.ClientID}
	}
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
// bounded by the server: the server never has more than its outbound queue
// unacked, and the session acks only what the application took.
type inbox struct {
	mu       sync.Mutex
	items    []*Message
	ready    chan struct{} // signalled on push
	received uint64        // highest seq received: anything at or below is a duplicate
	epoch    uint32        // counts fresh sessions; items of older ones are not acked
	conn     *conn         // acks go through it
}

func (in *inbox) init() { in.ready = make(chan struct{}, 1) }

// accept reports whether seq is new, and records it as received.
func (in *inbox) accept(seq uint64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if seq <= in.received {
		return false
	}
	in.received = seq
	return true
}

func (in *inbox) push(m *Message) {
	in.mu.Lock()
	m.epoch = in.epoch
	in.items = append(in.items, m)
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// consumed tells the stream that the ackable seq may have advanced.
func (in *inbox) consumed(uint64) {
	in.mu.Lock()
	c := in.conn
	in.mu.Unlock()
	if c != nil {
		c.noteAckable()
	}
}

// ackable is the highest seq every message up to which the application
// has taken.
func (in *inbox) ackable() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.items {
		if m.epoch == in.epoch {
			return m.Seq - 1
		}
	}
	return in.received
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
// session the server numbers from 1 again.
func (in *inbox) attach(c *conn, resumed bool, lost *tetherv1.SeqRange) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.conn = c
	if !resumed {
		in.received = 0
		in.epoch++
		return
	}
	if lost != nil && lost.GetLast() > in.received {
		in.received = lost.GetLast()
	}
}

func (in *inbox) detach(c *conn) {
	in.mu.Lock()
	if in.conn == c {
		in.conn = nil
	}
	in.mu.Unlock()
}

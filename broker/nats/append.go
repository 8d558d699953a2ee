package nats

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

// Log appends go to JetStream asynchronously, many in flight, and are
// awaited in batches (settleRange). An append is issued (numbered, and
// queued in issue order) by Log.Append, which a server calls under its
// session's lock, and published by the broker's appender goroutine, so
// that Append does no NATS I/O: publishing may write to the connection's
// socket, and waits when too many appends are unacknowledged. Appends are
// published in issue order, so each log's entries reach JetStream in seq
// order.

// pend is one log append on its way to JetStream.
type pend struct {
	id    uint64        // issue order, from 1
	done  chan struct{} // closed once err is set
	err   error
	onAck func(sseq uint64, err error)
	// key marks a key Record issued: settling waits for it (an
	// eviction's flush covers keys), but its failure is its caller's
	// (onAck), not a failed log append.
	key bool
	// of is the message a log append stores: a Publish reports the
	// failure of its own message's append, not of another's issued
	// meanwhile (see settleFor).
	of *broker.Message
}

// appender publishes issued appends, in issue order.
type appender struct {
	mu    sync.Mutex
	queue []*nats.Msg
	wake  chan struct{}
}

// appendAsync issues msg, an append to the log stream, without waiting:
// the appender publishes it, and settle waits for it. onAck runs once
// JetStream answered, or the publication failed.
func (b *Broker) appendAsync(msg *nats.Msg, of *broker.Message, onAck func(sseq uint64, err error)) {
	b.issue(msg, &pend{done: make(chan struct{}), onAck: onAck, of: of})
}

// issue queues msg, to be published as p: to the log stream, or to the
// stream its Nats-Expected-Stream header names (a key Record issued).
func (b *Broker) issue(msg *nats.Msg, p *pend) {
	b.pendMu.Lock()
	b.issued++
	p.id = b.issued
	b.inflight[msg] = p
	if len(b.pending) >= 4096 {
		// Appends nobody settles (to detached sessions, say): drop
		// the done ones so the list stays bounded.
		b.prunePendingLocked()
	}
	b.pending = append(b.pending, p)
	// Queued under pendMu: the queue's order is the issue order.
	b.appends.mu.Lock()
	b.appends.queue = append(b.appends.queue, msg)
	b.appends.mu.Unlock()
	b.pendMu.Unlock()
	select {
	case b.appends.wake <- struct{}{}:
	default:
	}
}

// publishAppends is the appender goroutine. Once the broker closes, it
// publishes what is still queued and returns.
func (b *Broker) publishAppends() {
	defer b.wg.Done()
	for {
		closing := false
		select {
		case <-b.appends.wake:
		case <-b.done:
			closing = true
		}
		b.publishQueued()
		if closing {
			return
		}
	}
}

// publishQueued publishes the appends queued so far, in order.
func (b *Broker) publishQueued() {
	defer b.recovered("publishing log appends")
	for {
		b.appends.mu.Lock()
		batch := b.appends.queue
		b.appends.queue = nil
		b.appends.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for i, msg := range batch {
			stream := b.subj.logStream
			if s := msg.Header.Get(jetstream.ExpectedStreamHeader); s != "" {
				stream = s // a key Record issued
			}
			if _, err := b.js.PublishMsgAsync(msg, jetstream.WithExpectStream(stream)); err != nil {
				b.acked(msg, 0, err)
			}
			batch[i] = nil
		}
	}
}

// acked completes the append of m, stored at stream seq sseq unless err.
func (b *Broker) acked(m *nats.Msg, sseq uint64, err error) {
	b.pendMu.Lock()
	p := b.inflight[m]
	delete(b.inflight, m)
	b.pendMu.Unlock()
	if p == nil {
		return
	}
	if p.onAck != nil {
		p.onAck(sseq, err)
	}
	p.err = err
	close(p.done)
}

// mark returns a mark for settleSince: the appends issued so far.
func (b *Broker) mark() uint64 {
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	return b.issued
}

// settle waits until every log append issued so far is stored, and
// returns the first error among them.
func (b *Broker) settle(ctx context.Context) error { return b.settleSince(ctx, 0) }

// settleSince waits until every log append issued after mark, and so far,
// is stored, and returns the first error among them: a caller checks the
// appends its own deliveries made, not older failures.
func (b *Broker) settleSince(ctx context.Context, mark uint64) error {
	return b.settleRange(ctx, mark, b.mark(), nil)
}

// settleFor is settleSince for a Publish of m: it waits for the same
// appends, but returns the error of m's own append, not of another
// session's issued meanwhile (the caller would re-send m, which was
// stored: a duplicate). When no append of m is among them (m was not
// appended as such), it returns the first error, as settleSince does.
func (b *Broker) settleFor(ctx context.Context, mark uint64, m *broker.Message) error {
	return b.settleRange(ctx, mark, b.mark(), m)
}

// settleRange waits for the appends with lo < id ≤ hi and returns the
// first error among them, or among the appends of of when there are
// some (of nil: all).
func (b *Broker) settleRange(ctx context.Context, lo, hi uint64, of *broker.Message) error {
	b.pendMu.Lock()
	batch := b.pending
	b.pendMu.Unlock()
	// The list is in id order: skip what is at or below lo at once.
	i, _ := slices.BinarySearchFunc(batch, lo+1, func(p *pend, id uint64) int { return cmp.Compare(p.id, id) })
	var first, own error
	found := false
	for _, p := range batch[i:] {
		if p.id > hi {
			break
		}
		select {
		case <-p.done:
			if p.key {
				continue
			}
			if first == nil && p.err != nil {
				first = fmt.Errorf("tether/broker/nats: a log append failed: %w", p.err)
			}
			if of != nil && p.of == of {
				found = true
				if own == nil && p.err != nil {
					own = fmt.Errorf("tether/broker/nats: the message's log append failed: %w", p.err)
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("tether/broker/nats: waiting for log appends: %w", ctx.Err())
		}
	}
	if found {
		first = own
	}
	if len(batch) > 0 {
		b.pendMu.Lock()
		b.prunePendingLocked()
		b.pendMu.Unlock()
	}
	return first
}

// prunePendingLocked drops the done appends at the head of the list.
func (b *Broker) prunePendingLocked() {
	i := 0
	for i < len(b.pending) && isDone(b.pending[i]) {
		i++
	}
	// Reslice, never overwrite: settlers may hold the prefix.
	b.pending = b.pending[i:]
}

func isDone(p *pend) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
)

// With the Router and a broker that implements broker.DeferredPublisher,
// the reader does not wait for each client message's delivery to be
// stored: a message delivered on this node is queued to its sessions, its
// Ack held back (marks.go), and the reader goes on to the next message of
// the frame. At the end of the frame, and before any message of it ends
// another way (a duplicate, a failure, a delivery to another node), the
// reader waits once for all of them (flushDeferred) and then records their
// keys. If one was not stored, they are all refused, from the first on,
// as a message whose delivery failed is: the client sends them again and
// the receivers drop what they got twice by its key (as after any
// refusal whose delivery may have arrived). So the messages of a frame
// share one wait instead of one each, and nothing is acknowledged, nor
// its key recorded, before it is stored.

// pipeline is a stream reader's deferred deliveries.
type pipeline struct {
	ctx      context.Context // st.handling, carrying cell when deliveries defer
	cell     deferral        // what the current delivery left to wait for
	deferred []deferredMsg   // in seq order
}

// deferral is where publish leaves the wait of a deferred delivery.
type deferral struct {
	settle func(context.Context) error
}

type deferralKey struct{}

// deferredMsg is a delivered message whose store is not awaited yet.
type deferredMsg struct {
	seq    uint64
	key    idempotency
	settle func(context.Context) error
}

// defers reports whether client messages' deliveries may be deferred: the
// Router delivers them through a broker that can.
func (srv *Server) defers() bool {
	_, router := srv.cfg.handler.(Router)
	_, ok := srv.broker.(broker.DeferredPublisher)
	return router && ok
}

// deliveryContext returns the context the stream's messages are handled
// in: st.handling, carrying the deferral cell when deliveries defer.
func (st *stream) deliveryContext() context.Context {
	if st.pipe.ctx == nil {
		st.pipe.ctx = st.handling
		if st.srv.defers() {
			st.pipe.ctx = context.WithValue(st.handling, deferralKey{}, &st.pipe.cell)
		}
	}
	return st.pipe.ctx
}

// publishDeferred publishes m without waiting for its store when ctx
// carries a deferral cell and the broker can; ok false otherwise.
func (srv *Server) publishDeferred(ctx context.Context, m *broker.Message) (n int, ok bool, err error) {
	cell, _ := ctx.Value(deferralKey{}).(*deferral)
	dp, can := srv.broker.(broker.DeferredPublisher)
	if cell == nil || !can {
		return 0, false, nil
	}
	n, settle, err := dp.PublishDeferred(ctx, m)
	if settle != nil {
		if prev := cell.settle; prev != nil {
			cell.settle = func(ctx context.Context) error {
				if err := prev(ctx); err != nil {
					return err
				}
				return settle(ctx)
			}
		} else {
			cell.settle = settle
		}
	}
	return n, true, err
}

// takeSettle returns and clears what the last delivery left to wait for.
func (st *stream) takeSettle() func(context.Context) error {
	f := st.pipe.cell.settle
	st.pipe.cell.settle = nil
	return f
}

// deferDelivery keeps message seq, delivered, for flushDeferred: it counts
// as received, its Ack held back until its key is stored.
func (st *stream) deferDelivery(seq uint64, d idempotency, settle func(context.Context) error) {
	st.holdAck(seq)
	st.pipe.deferred = append(st.pipe.deferred, deferredMsg{seq: seq, key: d, settle: settle})
	st.settled(seq)
}

// flushDeferred waits for the deferred deliveries to be stored and records
// their keys. If one was not, it refuses them all, from the first on, and
// reports false: the message being handled, sent after them, is then
// dropped unread like every other message behind a refused one.
func (st *stream) flushDeferred() bool {
	ds := st.pipe.deferred
	if len(ds) == 0 {
		return true
	}
	st.pipe.deferred = ds[:0]
	ctx := st.handling
	var err error
	for _, d := range ds {
		if err = d.settle(ctx); err != nil {
			break
		}
	}
	if err == nil {
		for _, d := range ds {
			st.recordDeferred(ctx, d)
		}
		clear(ds)
		return true
	}
	first := ds[0].seq
	clear(ds)
	st.unholdFrom(first)
	st.sess.inSeq.Store(first - 1)
	st.refuse(first, status.Errorf(codes.Unavailable, "its delivery was not stored: %v", err))
	return false
}

// recordDeferred records the key of d, a deferred delivery now stored; its
// Ack follows once the key is stored.
func (st *stream) recordDeferred(ctx context.Context, d deferredMsg) {
	if rec, ok := d.key.b.(broker.Recorder); ok && d.key.shared() {
		rec.Record(d.key.scope, d.key.key, d.key.window, func(err error) { st.markDone(d.seq, err) })
		return
	}
	st.markDone(d.seq, d.key.settle(ctx, true))
}

package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

// In DurabilityNode a session's log lives in the memory of the node that
// holds the session (a nodeLog), and no node reads another's. What another
// node needs when it adopts the session (its holder died, or let it go) is
// how far the log may have gone: the seqs the client has not received up to
// there are lost, and the resume says so. The holder stores that bound, the
// session's horizon, on P.seen.horizon_<id>: ahead of its appends, a block
// of seqs at a time, so that a message is appended without waiting for
// NATS; and exactly when it lets the session go (Unbind). An append whose
// seq the stored horizon does not cover yet is a pending append (see
// append.go) until it does: Sync (before the session's writer sends the
// message) and Publish (before it tells the publisher the message was
// delivered) wait for it, as they wait for JetStream appends in
// DurabilityCluster. So whatever a client received or a publisher was told
// was delivered is under the horizon, and a loss is reported, never silent.

// horizonBlock is how many seqs a horizon is stored ahead of a log's last
// append; the next is stored once half of them are used. On a node's
// death, the lost range a resume reports may include up to this many seqs
// that were never used.
const horizonBlock = 1024

// nodeLogs are the logs this node holds in DurabilityNode.
type nodeLogs struct {
	mu   sync.Mutex
	m    map[string]*nodeLog
	want map[string]*nodeLog // logs whose horizon to store
	wake chan struct{}
}

// nodeLog is one session's log in this node's memory.
type nodeLog struct {
	id string

	mu      sync.Mutex
	entries []broker.Entry // in seq order
	last    uint64         // the highest seq appended here; 0 before any
	trimmed uint64         // entries up to it were trimmed or dropped
	gone    bool           // released or deleted: no horizon is stored any more

	stored   uint64        // the stored horizon
	storedAt time.Time     // when it was stored
	seq      uint64        // its stream seq: the release's compare-and-set
	flight   chan struct{} // closed when the horizon being stored is; nil when none is
	waits    []horizonWait // appends above the stored horizon
}

// horizonWait is an append (seq) that waits for the horizon to cover it.
type horizonWait struct {
	seq uint64
	p   *pend
}

// nodeLogHandle is the broker.Log of one session in DurabilityNode.
type nodeLogHandle struct {
	b  *Broker
	id string
}

var (
	_ broker.Log     = (*nodeLogHandle)(nil)
	_ broker.Syncer  = (*nodeLogHandle)(nil)
	_ broker.Bounded = (*nodeLogHandle)(nil)
)

// horizon is the subject of session id's horizon, in the record stream
// under P.seen like parkClaim.
func (s subjects) horizon(id string) string { return s.prefix + ".seen.horizon_" + token(id) }

// log returns the node's log of session id, creating it if create is set,
// or nil.
func (ls *nodeLogs) log(id string, create bool) *nodeLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[id]
	if l == nil && create {
		if ls.m == nil {
			ls.m = make(map[string]*nodeLog)
		}
		l = &nodeLog{id: id}
		ls.m[id] = l
	}
	return l
}

// take removes the node's log of session id and returns it, or nil.
func (ls *nodeLogs) take(id string) *nodeLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[id]
	delete(ls.m, id)
	delete(ls.want, id)
	return l
}

// schedule asks the horizon writer to store l's horizon.
func (ls *nodeLogs) schedule(l *nodeLog) {
	ls.mu.Lock()
	if ls.want == nil {
		ls.want = make(map[string]*nodeLog)
	}
	ls.want[l.id] = l
	ls.mu.Unlock()
	select {
	case ls.wake <- struct{}{}:
	default:
	}
}

// Append adds e to the node's copy; it does no NATS I/O. When the stored
// horizon does not cover e.Seq, the append is pending until it does.
func (h *nodeLogHandle) Append(_ context.Context, e broker.Entry, capacity int) (_ broker.Appended, err error) {
	defer h.b.callErr(&err)
	b := h.b
	if err := b.usable(); err != nil {
		return broker.Appended{}, err
	}
	if capacity < 1 {
		return broker.Appended{}, errCapacity
	}
	l := b.nodeLogs.log(h.id, true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Seq == 0 || e.Seq <= l.last || e.Seq <= l.trimmed {
		return broker.Appended{}, errOrder
	}
	l.entries = append(l.entries, e)
	l.last = e.Seq
	var res broker.Appended
	if over := len(l.entries) - capacity; over > 0 {
		l.dropLocked(over)
		res.Dropped = over
	}
	res.Len = len(l.entries)
	if e.Seq > l.stored {
		l.waits = append(l.waits, horizonWait{seq: e.Seq, p: b.issueWait()})
	}
	if l.flight == nil && (e.Seq+horizonBlock/2 > l.stored || time.Since(l.storedAt) > b.o.RecordTTL/3) {
		b.nodeLogs.schedule(l)
	}
	return res, nil
}

// dropLocked removes the n oldest entries, in O(n): they slide off the
// front of the array, which append reallocates once its end is reached.
func (l *nodeLog) dropLocked(n int) {
	l.trimmed = max(l.trimmed, l.entries[n-1].Seq)
	clear(l.entries[:n])
	l.entries = l.entries[n:]
}

// held returns the node's copy of the log, nil when the node does not hold
// it or the broker is not usable (and then why).
func (h *nodeLogHandle) held() (*nodeLog, error) {
	if err := h.b.usable(); err != nil {
		return nil, err
	}
	return h.b.nodeLogs.log(h.id, false), nil
}

// Trim removes the entries with seq ≤ upTo. A log the node does not hold
// has nothing here to trim.
func (h *nodeLogHandle) Trim(_ context.Context, upTo uint64) (err error) {
	defer h.b.callErr(&err)
	l, err := h.held()
	if l == nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.entries) && l.entries[i].Seq <= upTo {
		i++
	}
	if i > 0 {
		l.dropLocked(i)
	}
	l.trimmed = max(l.trimmed, upTo)
	return nil
}

// Read calls fn for the entries with seq ≥ from. A log the node does not
// hold reads as empty: its entries, if any, are in another node's memory.
func (h *nodeLogHandle) Read(_ context.Context, from uint64, fn func(broker.Entry) bool) (err error) {
	defer h.b.callErr(&err)
	l, err := h.held()
	if l == nil {
		return err
	}
	l.mu.Lock()
	var entries []broker.Entry
	for _, e := range l.entries {
		if e.Seq >= from {
			entries = append(entries, e)
		}
	}
	l.mu.Unlock()
	for _, e := range entries {
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// Delete removes the log from this node and its horizon from NATS: the
// session ended.
func (h *nodeLogHandle) Delete(ctx context.Context) (err error) {
	defer h.b.callErr(&err)
	b := h.b
	if err := b.usable(); err != nil {
		return err
	}
	if l := b.nodeLogs.take(h.id); l != nil {
		l.release(broker.ErrClosed)
	}
	ks, err := b.kvStream()
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	if err := ks.Purge(ctx, jetstream.WithPurgeSubject(b.subj.horizon(h.id))); err != nil {
		return fmt.Errorf("tether/broker/nats: removing the horizon of session %q: %w", h.id, err)
	}
	return nil
}

// Sync returns once the stored horizon covers every entry appended to the
// log, or the storing failed.
func (h *nodeLogHandle) Sync(ctx context.Context) error {
	l := h.b.nodeLogs.log(h.id, false)
	if l == nil {
		return nil
	}
	l.mu.Lock()
	switch {
	case l.gone:
		l.mu.Unlock()
		return fmt.Errorf("tether/broker/nats: session %q left this node: %w", h.id, broker.ErrClosed)
	case l.last <= l.stored:
		l.mu.Unlock()
		return nil
	}
	if n := len(l.waits); n == 0 || l.waits[n-1].seq < l.last {
		// The waits of the appends above the horizon failed (NATS was
		// unreachable): store it again for them.
		l.waits = append(l.waits, horizonWait{seq: l.last, p: h.b.issueWait()})
		if l.flight == nil {
			h.b.nodeLogs.schedule(l)
		}
	}
	waits := slices.Clone(l.waits)
	l.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w.p.done:
			if w.p.err != nil {
				return w.p.err
			}
		case <-ctx.Done():
			return fmt.Errorf("tether/broker/nats: waiting for the session's horizon: %w", ctx.Err())
		}
	}
	return nil
}

// LastSeq returns the highest seq the log may hold (see broker.Bounded):
// the last appended, on the node holding it; elsewhere, the stored
// horizon, or 0 when none is.
func (h *nodeLogHandle) LastSeq(ctx context.Context) (_ uint64, err error) {
	defer h.b.callErr(&err)
	b := h.b
	if err := b.usable(); err != nil {
		return 0, err
	}
	if l := b.nodeLogs.log(h.id, false); l != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		return max(l.last, l.trimmed), nil
	}
	m, ok, err := b.get(ctx, b.subj.horizon(h.id))
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.ParseUint(string(m.Data), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("tether/broker/nats: the horizon of session %q: %w", h.id, errors.Join(err, errCorrupt))
	}
	return n, nil
}

// issueWait issues a pending append that no JetStream publication
// completes: the caller completes it (see settled).
func (b *Broker) issueWait() *pend {
	p := &pend{done: make(chan struct{})}
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	b.issued++
	p.id = b.issued
	if len(b.pending) >= 4096 {
		b.prunePendingLocked()
	}
	b.pending = append(b.pending, p)
	return p
}

// settledLocked completes the waits the stored horizon covers, or all of
// them with err.
func (l *nodeLog) settledLocked(err error) {
	keep := l.waits[:0]
	for _, w := range l.waits {
		if err == nil && w.seq > l.stored {
			keep = append(keep, w)
			continue
		}
		w.p.err = err
		close(w.p.done)
	}
	clear(l.waits[len(keep):])
	l.waits = keep
}

// release marks l gone and fails its waits with err. It returns the
// horizon store in flight, if any, to wait for.
func (l *nodeLog) release(err error) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = true
	l.settledLocked(err)
	return l.flight
}

// writeHorizons is the horizon writer: it stores the horizons scheduled,
// many in flight.
func (b *Broker) writeHorizons() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case <-b.nodeLogs.wake:
		}
		b.nodeLogs.mu.Lock()
		want := b.nodeLogs.want
		b.nodeLogs.want = nil
		b.nodeLogs.mu.Unlock()
		b.storeHorizons(want)
	}
}

// horizonStore is one horizon on its way to JetStream.
type horizonStore struct {
	l     *nodeLog
	value uint64
	ack   jetstream.PubAckFuture
	err   error
}

// storeHorizons stores the horizons of logs, each horizonBlock past its
// last append, and settles their waits.
func (b *Broker) storeHorizons(logs map[string]*nodeLog) {
	defer b.recovered("storing session horizons")
	stores := make([]horizonStore, 0, len(logs))
	for _, l := range logs {
		l.mu.Lock()
		if l.gone || l.flight != nil {
			l.mu.Unlock()
			continue
		}
		s := horizonStore{l: l, value: l.last + horizonBlock}
		l.flight = make(chan struct{})
		l.mu.Unlock()
		s.ack, s.err = b.js.PublishMsgAsync(&nats.Msg{Subject: b.subj.horizon(l.id), Data: strconv.AppendUint(nil, s.value, 10)},
			jetstream.WithExpectStream(b.subj.kvStream), jetstream.WithMsgTTL(recordTTL(b.o.RecordTTL+b.o.Retention)))
		stores = append(stores, s)
	}
	for _, s := range stores {
		var seq uint64
		if s.err == nil {
			select {
			case a := <-s.ack.Ok():
				seq = a.Sequence
			case err := <-s.ack.Err():
				s.err = err
			case <-b.done:
				s.err = broker.ErrClosed
			}
		}
		l := s.l
		l.mu.Lock()
		if s.err != nil {
			s.err = unavailable(fmt.Errorf("tether/broker/nats: storing the horizon of session %q: %w", l.id, s.err))
		} else if s.value > l.stored {
			l.stored, l.storedAt, l.seq = s.value, time.Now(), seq
		}
		if !l.gone {
			l.settledLocked(s.err)
		}
		close(l.flight)
		l.flight = nil
		again := !l.gone && s.err == nil && l.last+horizonBlock/2 > l.stored
		l.mu.Unlock()
		if again {
			b.nodeLogs.schedule(l) // appended past half the block meanwhile
		}
	}
}

// retireNodeLog lets the node's log of session id go (the session left the
// node): it stores the exact horizon, the last seq appended here, unless
// another node stored one since this node's last (the session moved while
// this node was cut off from NATS), and forgets the log.
func (b *Broker) retireNodeLog(ctx context.Context, id string) error {
	l := b.nodeLogs.take(id)
	if l == nil {
		return nil
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	if flight := l.release(broker.ErrClosed); flight != nil {
		select {
		case <-flight:
		case <-ctx.Done():
			return fmt.Errorf("tether/broker/nats: waiting for the horizon of session %q: %w", id, ctx.Err())
		}
	}
	l.mu.Lock()
	last, seq := max(l.last, l.trimmed), l.seq
	l.mu.Unlock()
	if last == 0 || seq == 0 {
		return nil // nothing appended here: the horizon stays as it was
	}
	_, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: b.subj.horizon(id), Data: strconv.AppendUint(nil, last, 10)},
		jetstream.WithExpectStream(b.subj.kvStream), jetstream.WithMsgTTL(recordTTL(b.o.RecordTTL+b.o.Retention)),
		jetstream.WithExpectLastSequencePerSubject(seq))
	switch {
	case err == nil, wrongLast(err):
		return nil
	case b.nc.IsConnected():
		return fmt.Errorf("tether/broker/nats: storing the last seq of session %q: %w", id, err)
	}
	// Cut off: the horizon stored stays, an upper bound.
	return nil
}

// closeNodeLogs fails the waits of every log the node holds: the broker
// closed.
func (b *Broker) closeNodeLogs() {
	b.nodeLogs.mu.Lock()
	logs := b.nodeLogs.m
	b.nodeLogs.m, b.nodeLogs.want = nil, nil
	b.nodeLogs.mu.Unlock()
	for _, l := range logs {
		l.release(broker.ErrClosed)
	}
}

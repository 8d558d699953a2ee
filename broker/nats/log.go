package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

var (
	errCapacity = errors.New("tether/broker/nats: log capacity must be at least 1")
	errOrder    = errors.New("tether/broker/nats: log entries must be appended in increasing seq order")
)

// logState is this node's copy of a session log it writes: the entries
// not yet trimmed, in seq order. The node that holds a session is the only
// writer of its log, so the copy is the log, and JetStream a write-through
// store that another node reads when the session moves there.
type logState struct {
	id      string
	subject string
	trimmed atomic.Uint64 // entries with seq ≤ trimmed are gone

	// moved is set when the node learned only after a NATS outage that
	// its session moved to another node, which read the log meanwhile:
	// the entries whose append failed are then handed on to the session
	// (see handOnUnstored), never written into the log.
	moved atomic.Bool
	// failures counts the entries whose append failed and that are not
	// written again yet, or more (one trimmed before its append failed):
	// repair has nothing to do while it is 0.
	failures atomic.Int64

	mu      sync.Mutex
	entries []*mirrored
	gone    []*mirrored // trimmed or dropped, and not yet purged from JetStream
	purged  uint64      // the subject is purged below this stream seq
}

// mirrored is one entry of a logState, with its stream seq once stored.
type mirrored struct {
	broker.Entry
	sseq   atomic.Uint64
	failed atomic.Bool // its append failed: Sync writes it again
}

var _ broker.Syncer = (*logHandle)(nil)

// logHandle is the broker.Log of one session.
type logHandle struct {
	b  *Broker
	id string
}

// Log returns the log of session sessionID. The node writing a log keeps a
// copy in memory; other nodes read JetStream. In DurabilityNode the copy is
// the whole log (see nodelog.go).
func (b *Broker) Log(sessionID string) broker.Log {
	if b.o.Durability == DurabilityNode {
		return &nodeLogHandle{b: b, id: sessionID}
	}
	return &logHandle{b: b, id: sessionID}
}

// state returns the node's copy of the log, creating an empty one when
// create is set, or nil.
func (h *logHandle) state(create bool) *logState {
	b := h.b
	b.logMu.Lock()
	defer b.logMu.Unlock()
	st := b.logs[h.id]
	if st == nil && create {
		st = &logState{id: h.id, subject: b.subj.log(h.id)}
		b.logs[h.id] = st
	}
	return st
}

// Append adds e. The first append on this node to a log that may already
// exist (seq above 1) reads it from JetStream first.
func (h *logHandle) Append(ctx context.Context, e broker.Entry, capacity int) (_ broker.Appended, err error) {
	defer h.b.callErr(&err)
	b := h.b
	defer func() {
		if err != nil {
			b.appendFails.Add(1)
		}
	}()
	if err := b.usable(); err != nil {
		return broker.Appended{}, err
	}
	if capacity < 1 {
		return broker.Appended{}, errCapacity
	}
	st, err := h.own(ctx, e.Seq)
	if err != nil {
		return broker.Appended{}, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.entries); (n > 0 && e.Seq <= st.entries[n-1].Seq) || e.Seq <= st.trimmed.Load() || e.Seq == 0 {
		return broker.Appended{}, errOrder
	}
	if status := b.nc.Status(); status != nats.CONNECTED {
		// As a publication would fail: nothing is queued while NATS is
		// unreachable (see ConnectOptions).
		return broker.Appended{}, unavailable(fmt.Errorf("tether/broker/nats: NATS is unreachable (%s): the message was not appended to the log; retry", status))
	}
	me := &mirrored{Entry: e}
	msg := &nats.Msg{Subject: st.subject, Data: encodeMessage(nil, e.Message, e.Seq)}
	// The ack handler does not take st.mu: it runs on nats.go's
	// goroutine, which must not wait behind appends.
	b.appendAsync(msg, e.Message, func(sseq uint64, err error) {
		if err != nil {
			me.failed.Store(true)
			st.failures.Add(1)
			return
		}
		me.sseq.Store(sseq)
		if me.Seq <= st.trimmed.Load() {
			b.purges.schedule(st.id)
		}
	})
	st.entries = append(st.entries, me)
	var res broker.Appended
	if over := len(st.entries) - capacity; over > 0 {
		st.dropLocked(over)
		res.Dropped = over
		b.purges.schedule(h.id)
	}
	res.Len = len(st.entries)
	return res, nil
}

// dropLocked removes the n oldest entries (trimmed or dropped). It costs
// O(n), whatever the log's length: the entries slide off the front of
// their array, which append reallocates (copying only the live entries)
// once its end is reached, so that an append costs O(1) amortized even to
// a full log.
func (st *logState) dropLocked(n int) {
	for _, d := range st.entries[:n] {
		st.forgetLocked(d)
	}
	clear(st.entries[:n]) // let the collector have them
	st.entries = st.entries[n:]
}

// own returns the node's copy of the log, which it is to append seq to
// next. Without one, it reads the log from JetStream first when seq is
// above 1 (see loadOwn): a server prepares the logs of the sessions it
// adopts (Prepare), so that Append, called under the session's lock, does
// no I/O.
func (h *logHandle) own(ctx context.Context, seq uint64) (*logState, error) {
	if st := h.state(false); st != nil {
		return st, nil
	}
	b := h.b
	fresh := &logState{id: h.id, subject: b.subj.log(h.id)}
	if seq > 1 {
		loaded, err := h.loadOwn(ctx, seq)
		if err != nil {
			return nil, err
		}
		fresh.entries = loaded
	}
	b.logMu.Lock()
	defer b.logMu.Unlock()
	st := b.logs[h.id]
	if st == nil {
		st = fresh
		b.logs[h.id] = st
	}
	delete(b.reads, h.id)
	return st, nil
}

var _ broker.Preparer = (*logHandle)(nil)

// Prepare reads the log from JetStream, when the node has no copy of it,
// for the node to append seq next (see [broker.Preparer]).
func (h *logHandle) Prepare(ctx context.Context, next uint64) (err error) {
	defer h.b.callErr(&err)
	if err := h.b.usable(); err != nil {
		return err
	}
	_, err = h.own(ctx, next)
	return err
}

// forgetLocked notes that d left the log (trimmed or dropped).
func (st *logState) forgetLocked(d *mirrored) {
	if d.failed.Load() {
		st.failures.Add(-1)
	}
	if d.Seq > st.trimmed.Load() {
		st.trimmed.Store(d.Seq)
	}
	st.gone = append(st.gone, d)
}

// purgeTarget returns the stream seq below which JetStream's copy may be
// purged, or 0 when nothing new may be.
func (st *logState) purgeTarget() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var below uint64
	keep := st.gone[:0]
	for _, d := range st.gone {
		switch s := d.sseq.Load(); {
		case s != 0:
			below = max(below, s+1)
		case !d.failed.Load():
			keep = append(keep, d) // not stored yet: its ack reschedules
		}
	}
	clear(st.gone[len(keep):])
	st.gone = keep
	if below <= st.purged {
		return 0
	}
	st.purged = below
	return below
}

// Trim removes the entries with seq ≤ upTo; JetStream forgets them soon
// after, in the background.
func (h *logHandle) Trim(ctx context.Context, upTo uint64) (err error) {
	defer h.b.callErr(&err)
	b := h.b
	if err := b.usable(); err != nil {
		return err
	}
	st := h.state(false)
	if st == nil {
		return h.trimRemote(ctx, upTo)
	}
	st.mu.Lock()
	i := 0
	for i < len(st.entries) && st.entries[i].Seq <= upTo {
		i++
	}
	st.dropLocked(i)
	if upTo > st.trimmed.Load() {
		st.trimmed.Store(upTo)
	}
	st.mu.Unlock()
	if i > 0 {
		b.purges.schedule(h.id)
	}
	return nil
}

// trimRemote trims a log this node does not write.
func (h *logHandle) trimRemote(ctx context.Context, upTo uint64) error {
	var below uint64
	err := h.b.readSubject(ctx, h.b.subj.log(h.id), func(sseq uint64, data []byte) bool {
		_, seq, err := decodeMessage(data)
		if err != nil || seq > upTo {
			return false
		}
		below = sseq + 1
		return true
	})
	if err != nil || below == 0 {
		return err
	}
	ctx, cancel := h.b.bound(ctx)
	defer cancel()
	return h.b.purgeSubject(ctx, h.b.subj.log(h.id), below)
}

// Read calls fn for the entries with seq ≥ from.
func (h *logHandle) Read(ctx context.Context, from uint64, fn func(broker.Entry) bool) (err error) {
	defer h.b.callErr(&err)
	if err := h.b.usable(); err != nil {
		return err
	}
	var entries []broker.Entry
	if st := h.state(false); st != nil {
		st.mu.Lock()
		for _, me := range st.entries {
			if me.Seq >= from {
				entries = append(entries, me.Entry)
			}
		}
		st.mu.Unlock()
	} else {
		loaded, err := h.load(ctx)
		if err != nil {
			return err
		}
		h.b.noteRead(h.id, loaded)
		for _, me := range loaded {
			if me.Seq >= from {
				entries = append(entries, me.Entry)
			}
		}
	}
	for _, e := range entries {
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// readMark is what a node read of a log it does not write: the stream
// seq of the last entry, and when.
type readMark struct {
	sseq uint64
	at   time.Time
}

// maxReadMarks is how many read marks a node keeps before it forgets
// those older than Retention.
const maxReadMarks = 1024

// noteRead notes that this node read log id from JetStream, as a node
// taking its session over does before it appends (see loadOwn).
func (b *Broker) noteRead(id string, loaded []*mirrored) {
	var last uint64
	for _, me := range loaded {
		last = max(last, me.sseq.Load())
	}
	now := time.Now()
	b.logMu.Lock()
	defer b.logMu.Unlock()
	if len(b.reads) >= maxReadMarks {
		for k, m := range b.reads {
			if now.Sub(m.at) > b.o.Retention {
				delete(b.reads, k)
			}
		}
	}
	b.reads[id] = readMark{sseq: last, at: now}
}

// lastRead returns the mark of this node's last read of log id; Append
// forgets it once the node writes the log.
func (b *Broker) lastRead(id string) (readMark, bool) {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	m, ok := b.reads[id]
	return m, ok
}

// loadOwn reads the log from JetStream for the node that is to append
// seq next. Entries from seq on that were stored after this node last read
// the log (as it took the session over) were written by a node that held
// the session before and went on writing after that (it was cut off from
// NATS and learned late that the session moved): they are removed from
// JetStream and handed on to the session as new messages (see handOn), so
// that the holder's own appends go on in order. Any other entry from seq
// on makes the append fail (errOrder).
func (h *logHandle) loadOwn(ctx context.Context, seq uint64) ([]*mirrored, error) {
	b := h.b
	read, wasRead := b.lastRead(h.id)
	loaded, err := h.load(ctx)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(loaded, seq, func(me *mirrored, seq uint64) int { return cmp.Compare(me.Seq, seq) })
	stale := loaded[i:]
	if len(stale) == 0 {
		return loaded, nil
	}
	if !wasRead || slices.ContainsFunc(stale, func(me *mirrored) bool { return me.sseq.Load() <= read.sseq }) {
		return nil, errOrder
	}
	ls, err := b.logStream()
	if err != nil {
		return nil, err
	}
	dctx, cancel := b.bound(ctx)
	defer cancel()
	msgs := make([]*broker.Message, 0, len(stale))
	for _, me := range stale {
		if err := ls.DeleteMsg(dctx, me.sseq.Load()); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("tether/broker/nats: removing entry %d that another node wrote into the log of session %q after it moved: %w", me.Seq, h.id, err)
		}
		msgs = append(msgs, me.Message)
	}
	b.o.Logger.Warn("tether: nats broker: another node wrote into a session's log after the session moved here; handing its entries on as new messages",
		"session", h.id, "entries", len(stale), "first", stale[0].Seq, "next", seq)
	b.handOn(h.id, msgs, "a former holder wrote them into the log after the session moved")
	return loaded[:i], nil
}

// load reads the log from JetStream.
func (h *logHandle) load(ctx context.Context) ([]*mirrored, error) {
	var out []*mirrored
	var bad error
	err := h.b.readSubject(ctx, h.b.subj.log(h.id), func(sseq uint64, data []byte) bool {
		m, seq, err := decodeMessage(data)
		if err != nil || seq == 0 {
			bad = fmt.Errorf("tether/broker/nats: log entry %d of session %q: %w", sseq, h.id, errors.Join(err, errCorrupt))
			return true
		}
		me := &mirrored{Entry: broker.Entry{Seq: seq, Message: m}}
		me.sseq.Store(sseq)
		out = append(out, me)
		return true
	})
	// Entries are in seq order, but for one written again after a failed
	// append (see Sync): sort, and keep the last copy of each seq.
	slices.SortStableFunc(out, func(a, b *mirrored) int { return cmp.Compare(a.Seq, b.Seq) })
	last := out[:0]
	for i, me := range out {
		if i+1 == len(out) || out[i+1].Seq != me.Seq {
			last = append(last, me)
		}
	}
	clear(out[len(last):])
	out = last
	if err != nil {
		return nil, fmt.Errorf("tether/broker/nats: reading the log of session %q: %w", h.id, err)
	}
	if bad != nil {
		h.b.o.Logger.Warn("tether: nats broker: skipped a corrupt log entry", "err", bad)
	}
	return out, nil
}

// Sync waits until every entry appended so far, to any log of the broker,
// is stored in JetStream, and writes again the entries of this log whose
// append failed (NATS was unreachable, say), so that the log has no hole.
func (h *logHandle) Sync(ctx context.Context) error {
	if err := h.b.settle(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	if st := h.state(false); st != nil {
		return st.repair(ctx, h.b)
	}
	return nil
}

// errMoved reports that a log's session moved to another node while this
// one was cut off from NATS.
var errMoved = errors.New("tether/broker/nats: the session moved to another node while NATS was unreachable: its log is that node's now")

// repair writes again, in order, the entries whose append failed.
func (st *logState) repair(ctx context.Context, b *Broker) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.moved.Load() {
		return errMoved // handed on instead (see retireLog)
	}
	if st.failures.Load() == 0 {
		return nil
	}
	for _, me := range st.entries {
		if !me.failed.Load() {
			continue
		}
		ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: st.subject, Data: encodeMessage(nil, me.Message, me.Seq)}, jetstream.WithExpectStream(b.subj.logStream))
		if err != nil {
			return fmt.Errorf("tether/broker/nats: storing message %d of session %q again: %w", me.Seq, st.id, err)
		}
		me.sseq.Store(ack.Sequence)
		me.failed.Store(false)
		st.failures.Add(-1)
	}
	return nil
}

// Delete removes the log from JetStream and from this node.
func (h *logHandle) Delete(ctx context.Context) (err error) {
	defer h.b.callErr(&err)
	b := h.b
	if err := b.usable(); err != nil {
		return err
	}
	b.logMu.Lock()
	delete(b.logs, h.id)
	delete(b.reads, h.id)
	b.logMu.Unlock()
	ctx, cancel := b.bound(ctx)
	defer cancel()
	// Appends still in flight would land after the purge.
	if err := b.settle(ctx); err != nil {
		b.o.Logger.Debug("tether: nats broker: appends failed before a log delete", "err", err)
	}
	return b.purgeSubject(ctx, b.subj.log(h.id), 0)
}

// purgeSubject removes the messages on subj below stream seq below, or
// all of them when below is 0.
func (b *Broker) purgeSubject(ctx context.Context, subj string, below uint64) error {
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(subj)}
	if below > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(below))
	}
	ls, err := b.logStream()
	if err != nil {
		return err
	}
	if err := ls.Purge(ctx, opts...); err != nil {
		return fmt.Errorf("tether/broker/nats: purging %s: %w", subj, err)
	}
	return nil
}

// readSubject calls fn with each message on subj of the log stream, in
// stream order, up to the last one stored when it began, until fn returns
// false. A few messages are read one request each; a longer subject through
// one ordered consumer.
func (b *Broker) readSubject(ctx context.Context, subj string, fn func(sseq uint64, data []byte) bool) error {
	ls, err := b.logStream()
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	last, err := ls.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	seq := uint64(1)
	for range 8 {
		m, err := ls.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // purged meanwhile
		}
		if err != nil {
			return err
		}
		if m.Sequence > last.Sequence || !fn(m.Sequence, m.Data) || m.Sequence == last.Sequence {
			return nil
		}
		seq = m.Sequence + 1
	}
	cons, err := b.js.OrderedConsumer(ctx, b.subj.logStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subj},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(512)
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			s := meta.Sequence.Stream
			if s > last.Sequence || !fn(s, m.Data()) || s == last.Sequence {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			return nil // purged meanwhile
		}
	}
}

// purger trims JetStream's copy of logs in the background, coalescing the
// trims of each log.
type purger struct {
	b    *Broker
	mu   sync.Mutex
	want map[string]struct{} // session ids with something to purge
	wake chan struct{}
}

func (p *purger) schedule(id string) {
	p.mu.Lock()
	p.want[id] = struct{}{}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *purger) run() {
	defer p.b.wg.Done()
	for {
		select {
		case <-p.b.done:
			return
		case <-p.wake:
		}
		p.mu.Lock()
		ids := p.want
		p.want = make(map[string]struct{})
		p.mu.Unlock()
		for id := range ids {
			p.purge(id)
		}
	}
}

func (p *purger) purge(id string) {
	b := p.b
	defer b.recovered("trimming a log in JetStream")
	b.logMu.Lock()
	st := b.logs[id]
	b.logMu.Unlock()
	if st == nil {
		return
	}
	below := st.purgeTarget()
	if below == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.o.Timeout)
	defer cancel()
	if err := b.purgeSubject(ctx, st.subject, below); err != nil {
		b.o.Logger.Debug("tether: nats broker: trimming a log in JetStream failed; retention will", "err", err)
	}
}

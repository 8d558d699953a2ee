package nats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

// Parked messages are delivered by whichever node binds their address, and
// two may (a client id taken over from one node to another, a node back
// from a NATS outage that has not released a session yet). A node delivers
// them only under a claim: a compare-and-set on the address's claim subject
// (P.seen.park_<s|c>_<id>) that names the node's broker instance, the last
// stream seq it delivers and until when the claim stands. The claimer
// delivers, waits for its log appends, and purges what it delivered. Another
// node finding a standing claim on messages still parked leaves them to the
// claimer, parks what comes for the address behind them (it must not
// overtake them), and looks again when the claim ends: by then they are
// purged, or the claimer died before purging them and this node delivers
// them.

// claimAttempts bounds the compare-and-set retries of one claim.
const claimAttempts = 3

// claim is a node's claim on an address's parked messages, as stored.
type claim struct {
	instance string    // the claiming broker's instance
	upTo     uint64    // the last stream seq it delivers
	until    time.Time // when the claim ends
	seq      uint64    // the claim's own stream seq, for the next compare-and-set
}

func (c claim) encode() []byte {
	return []byte(c.instance + " " + strconv.FormatUint(c.upTo, 10) + " " + strconv.FormatInt(c.until.UnixNano(), 10))
}

func decodeClaim(data []byte, seq uint64) (claim, bool) {
	f := strings.Fields(string(data))
	if len(f) != 3 {
		return claim{}, false
	}
	upTo, err1 := strconv.ParseUint(f[1], 10, 64)
	until, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return claim{}, false
	}
	return claim{instance: f[0], upTo: upTo, until: time.Unix(0, until), seq: seq}, true
}

// claimTTL is how long a claim stands: long enough for the claimer to
// deliver, store and purge what it claimed (each step bounded by Timeout).
func (b *Broker) claimTTL() time.Duration { return 3 * b.o.Timeout }

// park keeps m for the session behind its target, when a live record
// names one, and pokes whichever node binds the target by now, and once
// more a second later: a node that bound it a moment ago may not have had
// its interest known to this node's NATS server yet (see parkMarks).
func (b *Broker) park(ctx context.Context, m *broker.Message) (int, error) {
	n, err := b.parkQuiet(ctx, m)
	if n > 0 {
		b.poke(ctx, m.Target)
		b.pokeAt(m.Target, time.Now().Add(repoke))
	}
	return n, err
}

// repoke is how long after parking a message a node pokes its address
// again.
const repoke = time.Second

// parkQuiet parks m as park does, without a poke, and marks its address
// (see parkMarks).
func (b *Broker) parkQuiet(ctx context.Context, m *broker.Message) (int, error) {
	ok, err := b.parkable(ctx, m.Target)
	if err != nil || !ok {
		return 0, err
	}
	subj := b.subj.park(m.Target)
	ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: encodeMessage(nil, m, 0)}, jetstream.WithExpectStream(b.subj.logStream))
	if err != nil {
		return 0, fmt.Errorf("tether/broker/nats: keeping a message for %s %q: %w", m.Target.Kind, m.Target.Name, err)
	}
	b.marks.note(m.Target, ack.Sequence, b.guardPeriod)
	return 1, nil
}

// poke tells whichever node binds addr that something was parked for it:
// this node, or (when this node does not bind it, or its binding is lame)
// the others.
func (b *Broker) poke(ctx context.Context, addr broker.Address) {
	route, _ := b.subj.route(addr)
	poke := &nats.Msg{Subject: route, Header: nats.Header{hdrOp: []string{opPoke}}}
	b.bindMu.Lock()
	bd := b.binds[addr]
	local := bd != nil && bd.n > 0
	b.bindMu.Unlock()
	if local {
		// No echo: the node's own poke would not come back.
		select {
		case b.shard(route) <- poke:
		case <-ctx.Done():
		case <-b.done:
		}
	} else if err := b.nc.PublishMsg(poke); err != nil {
		b.o.Logger.Debug("tether: nats broker: poke failed", "err", err)
	}
}

// parkable reports whether a live session record stands behind target.
func (b *Broker) parkable(ctx context.Context, target broker.Address) (bool, error) {
	id := target.Name
	if target.Kind == broker.KindClient {
		sid, ok, err := b.clientSession(ctx, target.Name)
		if err != nil || !ok {
			return false, err
		}
		id = sid
	}
	rec, ok, err := b.GetSession(ctx, id)
	if err != nil || !ok {
		return false, err
	}
	if rec.Closed || (!rec.Expires.IsZero() && !time.Now().Before(rec.Expires)) {
		return false, nil
	}
	return target.Kind != broker.KindClient || rec.ClientID == target.Name, nil
}

// parked is one parked message as read.
type parked struct {
	sseq uint64
	data []byte
}

// drainLocked delivers addr's parked messages not yet delivered here, in
// order, under a claim (see above), and removes them from JetStream.
// bd.guard is held. A drain runs to its end whatever becomes of ctx
// (bounded by Timeout per step): cut short between delivering and purging,
// it would leave delivered messages parked, and cut short before
// delivering, it would let the message that triggered it overtake them.
//
// A drain that fails is tried again, while the address stays bound, after
// a delay that doubles from drainRetry up to a minute: without it, what
// was parked would wait for the next poke.
//
// It returns how many parked messages it delivered, with the error that
// stopped it, if any.
func (b *Broker) drainLocked(ctx context.Context, addr broker.Address, bd *binding) (int, error) {
	n, err := b.drainOnceLocked(ctx, addr, bd)
	if err == nil {
		bd.retry = 0
		bd.owed.Store(false)
		return n, nil
	}
	if !b.closed.Load() {
		bd.retry = min(max(2*bd.retry, drainRetry), time.Minute)
		b.pokeAt(addr, time.Now().Add(bd.retry))
	}
	return n, err
}

// drainRetry is the first delay before a failed drain is tried again.
const drainRetry = 250 * time.Millisecond

func (b *Broker) drainOnceLocked(ctx context.Context, addr broker.Address, bd *binding) (int, error) {
	ctx = context.WithoutCancel(ctx)
	subj := b.subj.park(addr)
	var msgs []parked
	stale := false // delivered here before, and not purged: a purge failed
	err := b.readSubject(ctx, subj, func(sseq uint64, data []byte) bool {
		if sseq > bd.drained {
			msgs = append(msgs, parked{sseq, data})
		} else {
			stale = true
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		if !stale {
			return 0, nil
		}
		// Delivered here before, and kept parked: their appends or the
		// purge failed. Purged once this node's logs hold them.
		pctx, cancel := b.bound(ctx)
		defer cancel()
		if err := b.storeLogs(pctx, 0); err != nil {
			return 0, err
		}
		return 0, b.purgeSubject(pctx, subj, bd.drained+1)
	}
	ok, claimSeq, err := b.claimParked(ctx, addr, msgs[0].sseq, msgs[len(msgs)-1].sseq)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		// Still parked, under another node's claim: a delivery now would
		// overtake them, so it parks behind them (see deliverLocal).
		return 0, fmt.Errorf("nats broker: messages parked for %s %q are claimed by another node; delivering after them once its claim ends", addr.Kind, addr.Name)
	}
	// Delivered in order until the receiver takes one nowhere (its
	// session is not, or no longer, on this node; its log append failed):
	// that one and the rest stay parked.
	var done uint64 // the last parked message dealt with
	n := 0
	var refused error
	mark := b.mark()
	for _, pm := range msgs {
		m, _, err := decodeMessage(pm.data)
		switch {
		case err != nil || m.Target != addr:
			b.o.Logger.Warn("tether: nats broker: dropped an undecodable parked message", "target", addr.Kind.String(), "err", err)
		default:
			if k, derr := b.receiver.Deliver(m); k == 0 || derr != nil {
				refused = fmt.Errorf("tether/broker/nats: a message parked for %s %q reached no session on this node (%v); it stays parked", addr.Kind, addr.Name, derr)
			}
		}
		if refused != nil {
			break
		}
		n++
		done = pm.sseq
	}
	if done == 0 {
		b.letGo(ctx, addr, claimSeq, 0)
		return 0, refused
	}
	bd.drained = done
	sctx, cancel := b.bound(ctx)
	err = b.storeLogs(sctx, mark)
	cancel()
	if err != nil {
		// Queued to the sessions, not stored: they stay parked (not
		// delivered here again: see bd.drained) until they are, so that
		// they survive this node; the drain is tried again.
		return n, fmt.Errorf("tether/broker/nats: parked messages were delivered but not all stored, so they stay parked: %w", err)
	}
	pctx, cancel := b.bound(ctx)
	defer cancel()
	perr := b.purgeSubject(pctx, subj, done+1)
	if perr == nil && refused != nil {
		b.letGo(ctx, addr, claimSeq, done)
	}
	return n, errors.Join(perr, refused)
}

// letGo gives up this node's claim (published at claimSeq) on addr's
// parked messages after the one at stream seq done, which it found no
// session for here (the session moved on), and pokes the other nodes:
// the node that holds the session delivers them now, not once the claim
// would have ended. Delivered ones (up to done) are purged already.
func (b *Broker) letGo(ctx context.Context, addr broker.Address, claimSeq, done uint64) {
	c := claim{instance: b.instance, upTo: done, until: time.Now()}
	if _, err := b.publishClaim(ctx, b.subj.parkClaim(addr), c, claimSeq); err != nil {
		// Another node wrote the claim since (it stands on its own), or
		// NATS failed: the claim then ends on its own, as before.
		b.o.Logger.Debug("tether: nats broker: giving up a claim on parked messages failed", "target", addr.Kind.String(), "err", err)
		return
	}
	route, _ := b.subj.route(addr)
	if err := b.nc.PublishMsg(&nats.Msg{Subject: route, Header: nats.Header{hdrOp: []string{opPoke}}}); err != nil {
		b.o.Logger.Debug("tether: nats broker: poke failed", "err", err)
	}
}

// storeLogs waits for the log appends issued after mark, then writes again
// the failed entries of every log this node writes. It returns nil once
// they are all stored.
func (b *Broker) storeLogs(ctx context.Context, mark uint64) error {
	if err := b.settleSince(ctx, mark); err != nil && ctx.Err() != nil {
		return err
	}
	b.logMu.Lock()
	logs := slices.Collect(maps.Values(b.logs))
	b.logMu.Unlock()
	var errs []error
	for _, st := range logs {
		if !st.moved.Load() { // handed on instead
			errs = append(errs, st.repair(ctx, b))
		}
	}
	return errors.Join(errs...)
}

// claimParked claims addr's parked messages up to stream seq last, the
// first still parked being first. It returns ok false when another node's
// claim stands on some of them (and pokes this node when it ends).
func (b *Broker) claimParked(ctx context.Context, addr broker.Address, first, last uint64) (ok bool, seq uint64, err error) {
	subj := b.subj.parkClaim(addr)
	for range claimAttempts {
		var prev claim
		m, found, err := b.get(ctx, subj)
		if err != nil {
			return false, 0, fmt.Errorf("tether/broker/nats: reading the claim on parked messages: %w", err)
		}
		if found {
			prev, found = decodeClaim(m.Data, m.Sequence)
			prev.seq = m.Sequence // an undecodable claim is overwritten
		}
		switch {
		case !found || prev.upTo < first || prev.instance == b.instance:
			// No claim, one whose messages are all purged, or this
			// broker's own: the binding's drained seq covers what it
			// delivered before.
		case time.Now().Before(prev.until):
			b.pokeAt(addr, prev.until)
			return false, 0, nil
		default:
			// The claimer died before purging: deliver its messages.
			b.o.Logger.Warn("tether: nats broker: delivering parked messages whose claimer did not finish", "target", addr.Kind.String())
		}
		c := claim{instance: b.instance, upTo: last, until: time.Now().Add(b.claimTTL())}
		seq, err := b.publishClaim(ctx, subj, c, prev.seq)
		if err == nil {
			return true, seq, nil
		}
		if !wrongLast(err) {
			return false, 0, fmt.Errorf("tether/broker/nats: claiming parked messages: %w", err)
		}
		// Another node claimed meanwhile: look again.
	}
	return false, 0, fmt.Errorf("tether/broker/nats: claiming parked messages for %s: %d attempts lost to other nodes", addr.Kind, claimAttempts)
}

// publishClaim writes c on subj if the subject's last message is at
// prevSeq, and returns the new message's seq.
func (b *Broker) publishClaim(ctx context.Context, subj string, c claim, prevSeq uint64) (uint64, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: c.encode()},
		jetstream.WithExpectStream(b.subj.kvStream),
		jetstream.WithExpectLastSequencePerSubject(prevSeq),
		jetstream.WithMsgTTL(b.claimTTL().Round(time.Second)+time.Second))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// pokeAt pokes this node for addr at t, so that it drains again once
// another node's claim ended.
func (b *Broker) pokeAt(addr broker.Address, t time.Time) {
	time.AfterFunc(time.Until(t)+10*time.Millisecond, func() {
		if b.closed.Load() {
			return
		}
		defer b.recovered("poking after a claim")
		ctx, cancel := b.bound(context.Background())
		defer cancel()
		b.poke(ctx, addr)
	})
}

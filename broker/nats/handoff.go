package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
)

// A node can hold messages for a session that the session's log never got:
// it queued them (its Receiver took them, the publisher was answered) but
// their asynchronous log append failed, NATS being unreachable, and the
// session moved to another node meanwhile, which read the log without
// them. Writing them into the log now would put them under seqs the new
// holder assigns itself (its appends would then fail). The node hands them
// on instead: each goes to the session's route as a message of its own,
// marked with the handoff op, and the holder queues it to the session (see
// broker.SessionReceiver) under a new seq, behind what it has. The same
// happens to entries a stale holder wrote into a log after the new holder
// read it, which the new holder finds on its first append (see Append).
//
// A handed-on message that no node holds is parked when it is addressed to
// the session itself, else offered again, with a backoff, for as long as
// the session's record stands. A message that cannot reach the session (its
// record ended, the broker closed, the holder cannot take it) is a loss: it
// is logged at error level and counted in tether_nats_broker_lost_total.

// opHandoff marks a message handed on to the session whose route carries it
// (see above); its target may be another address (a topic, a client id).
const opHandoff = "handoff"

// handoffRetry bounds the delay between two offers of a handed-on message.
const handoffRetry = 5 * time.Second

// errNoSessionReceiver reports that the Receiver cannot take a message for
// one session whose target is another address.
var errNoSessionReceiver = errors.New("the node's receiver takes no message for one session addressed elsewhere (it does not implement broker.SessionReceiver)")

// handOn hands msgs on, in order, to session id, in the background.
func (b *Broker) handOn(id string, msgs []*broker.Message, why string) {
	if len(msgs) == 0 {
		return
	}
	b.o.Logger.Info("tether: nats broker: handing messages on to a session's new holder", "session", id, "messages", len(msgs), "why", why)
	b.bindMu.Lock() // Close waits for the goroutines it knows of
	defer b.bindMu.Unlock()
	if b.closed.Load() {
		b.reportLost(id, len(msgs), "the broker closed before handing them on ("+why+")")
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.recovered("handing messages on")
		for i, m := range msgs {
			if err := b.handOnOne(id, m); err != nil {
				b.reportLost(id, len(msgs)-i, err.Error()+" ("+why+")")
				return
			}
		}
	}()
}

// handOnOne offers m to session id until it is taken or cannot be.
func (b *Broker) handOnOne(id string, m *broker.Message) error {
	wait := 100 * time.Millisecond
	for {
		done, err := b.offer(id, m)
		if done || err != nil {
			return err
		}
		select {
		case <-b.done:
			return errors.New("the broker closed")
		case <-time.After(wait):
		}
		wait = min(2*wait, handoffRetry)
	}
}

// offer hands m once to session id, on this node or the node holding it.
// It reports whether m was taken (or parked), and an error when it never
// can be.
func (b *Broker) offer(id string, m *broker.Message) (bool, error) {
	addr := broker.Session(id)
	ctx, cancel := b.bound(context.Background())
	defer cancel()
	if n, local, err := b.offerLocal(addr, m); local {
		switch {
		case errors.Is(err, errNoSessionReceiver):
			return false, err
		case err != nil:
			return false, nil // full, or checking after a reconnect
		case n > 0:
			return true, nil
		}
		return b.parkHandedOn(ctx, id, m)
	}
	if !b.nc.IsConnected() {
		return false, nil
	}
	route, err := b.subj.route(addr)
	if err != nil {
		return false, err
	}
	reply, err := b.ask(ctx, addr, &nats.Msg{Subject: route, Data: encodeMessage(nil, m, 0), Header: nats.Header{hdrOp: []string{opHandoff}}})
	switch {
	case errors.Is(err, errNoHolder):
	case err != nil, string(reply) == replyFull:
		return false, nil
	case strings.HasPrefix(string(reply), replyErr):
		// Taken: the holder queued it, and writes it again (Sync).
		b.o.Logger.Warn("tether: nats broker: a handed-on message was queued but not stored yet", "session", id, "reply", string(reply))
		return true, nil
	default:
		if n, _ := strconv.Atoi(string(reply)); n > 0 {
			return true, nil
		}
		if string(reply) != "0" {
			return false, fmt.Errorf("the holder refused it: %s", reply)
		}
	}
	return b.parkHandedOn(ctx, id, m)
}

// errChecking reports that the node is checking its sessions after a
// reconnect, and delivers nothing to them meanwhile.
var errChecking = errors.New("checking sessions after a reconnect")

// offerLocal hands m to session id when this node binds it; local false
// when it does not.
func (b *Broker) offerLocal(addr broker.Address, m *broker.Message) (n int, local bool, err error) {
	b.bindMu.Lock()
	bd := b.binds[addr]
	local = bd != nil && bd.n > 0
	b.bindMu.Unlock()
	switch {
	case !local:
		return 0, false, nil
	case b.recheck.Load():
		return 0, true, errChecking
	}
	n, err = b.deliverSession(addr.Name, m)
	return n, true, err
}

// parkHandedOn keeps m, which no node takes now, for session id: parked
// when it is addressed to the session, else offered again while the
// session's record stands.
func (b *Broker) parkHandedOn(ctx context.Context, id string, m *broker.Message) (bool, error) {
	if m.Target == broker.Session(id) {
		n, err := b.park(ctx, m)
		switch {
		case err != nil:
			return false, nil
		case n == 0:
			return false, errors.New("the session has ended")
		}
		return true, nil
	}
	ok, err := b.parkable(ctx, broker.Session(id))
	switch {
	case err != nil:
		return false, nil
	case !ok:
		return false, errors.New("the session has ended")
	}
	return false, nil
}

// deliverSession queues m to session id on this node, whatever m's target.
func (b *Broker) deliverSession(id string, m *broker.Message) (int, error) {
	if sr, ok := b.receiver.(broker.SessionReceiver); ok {
		return sr.DeliverSession(id, m)
	}
	if m.Target == broker.Session(id) {
		return b.receiver.Deliver(m)
	}
	return 0, errNoSessionReceiver
}

// handleHandoff answers a handed-on message that msg carries to addr.
func (b *Broker) handleHandoff(msg *nats.Msg, addr broker.Address) {
	m, _, err := decodeMessage(msg.Data)
	switch {
	case err != nil || addr.Kind != broker.KindSession:
		b.o.Logger.Warn("tether: nats broker: dropped an undecodable handed-on message", "subject", msg.Subject, "err", err)
		_ = msg.Respond([]byte(replyErr + "undecodable message"))
		return
	case b.recheck.Load():
		_ = msg.Respond([]byte("0")) // not known to be ours yet: offered again
		return
	}
	before := b.mark()
	fails := b.appendFails.Load()
	n, err := b.deliverSession(addr.Name, m)
	switch {
	case errors.Is(err, broker.ErrFull):
		_ = msg.Respond([]byte(replyFull))
	case err != nil:
		_ = msg.Respond([]byte(err.Error()))
	case n == 0 && b.appendFails.Load() != fails:
		_ = msg.Respond([]byte("0")) // not queued: offered again
	default:
		b.answerStored(msg, m, n, before)
	}
}

// answerStored answers msg, which carried m, with n once the log appends
// issued since before are stored.
func (b *Broker) answerStored(msg *nats.Msg, m *broker.Message, n int, before uint64) {
	if after := b.mark(); n > 0 && after > before {
		// Answered once stored, by the answerer goroutine, so that
		// this one goes on delivering while JetStream acknowledges.
		select {
		case b.answers <- answer{msg: msg, of: m, n: n, lo: before, hi: after}:
		case <-b.done:
		}
		return
	}
	_ = msg.Respond(strconv.AppendInt(nil, int64(n), 10))
}

// reportLost logs and counts n messages for session id that are lost.
func (b *Broker) reportLost(id string, n int, why string) {
	b.lost.Add(uint64(n))
	b.o.Logger.Error("tether: nats broker: messages lost: they were queued to a session on this node and never stored",
		"session", id, "messages", n, "why", why)
}

// sameMessage reports whether a and b are the same message.
func sameMessage(a, b *broker.Message) bool {
	return a.Target == b.Target && bytes.Equal(a.Payload, b.Payload) && a.ContentType == b.ContentType &&
		maps.Equal(a.Headers, b.Headers) && a.CorrelationID == b.CorrelationID &&
		a.SourceSession == b.SourceSession && a.SourceClient == b.SourceClient &&
		a.PublishedAt.Equal(b.PublishedAt) && a.DedupeKey == b.DedupeKey
}

// handOnUnstored hands on the entries of st, a log this node no longer
// writes (its session moved, or the node let it go), that are not stored:
// their append failed (or is still unanswered). One whose acknowledgement
// alone was lost is in JetStream, where the next holder reads it, and is
// left there; when JetStream cannot be read to tell, every such entry is
// handed on (at worst a message arrives twice: a publisher's retry with an
// idempotency key is dropped as a duplicate).
func (b *Broker) handOnUnstored(ctx context.Context, st *logState, why string) {
	st.mu.Lock()
	var unstored []*mirrored
	for _, me := range st.entries {
		if me.sseq.Load() == 0 {
			unstored = append(unstored, me)
		}
	}
	st.mu.Unlock()
	if len(unstored) == 0 {
		return
	}
	stored := make(map[uint64][]*broker.Message)
	rctx, cancel := b.bound(context.WithoutCancel(ctx))
	defer cancel()
	err := b.readSubject(rctx, st.subject, func(_ uint64, data []byte) bool {
		if m, seq, err := decodeMessage(data); err == nil {
			stored[seq] = append(stored[seq], m)
		}
		return true
	})
	if err != nil {
		b.o.Logger.Warn("tether: nats broker: reading the log of a session that moved failed; handing on every entry not known to be stored", "session", st.id, "err", err)
	}
	msgs := make([]*broker.Message, 0, len(unstored))
	for _, me := range unstored {
		if !slices.ContainsFunc(stored[me.Seq], func(m *broker.Message) bool { return sameMessage(m, me.Message) }) {
			msgs = append(msgs, me.Message)
		}
	}
	b.handOn(st.id, msgs, why)
}

package nats

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

// The adoption of a session is fenced (see [broker.Fencer]) by a claim on
// P.seen.adopt_<id>, written by compare-and-set on the subject's last
// sequence: "<node> <until>" while it stands, "released" once released.
// A claim stands until it is released or until <until> (3 × Timeout after
// it was made, by the claimer's clock), whichever comes first. Nodes
// holding a session never write the subject.

var _ broker.Fencer = (*Broker)(nil)

// fenceState is the last claim on a session, as read.
type fenceState struct {
	seq      uint64 // its stream seq; 0 when there is none
	node     string
	standing bool // not released, and not lapsed
}

// readFence returns the last claim on session id.
func (b *Broker) readFence(ctx context.Context, id string) (fenceState, error) {
	m, ok, err := b.get(ctx, b.subj.adopt(id))
	if err != nil || !ok {
		return fenceState{}, err
	}
	node, until, _ := strings.Cut(string(m.Data), " ")
	f := fenceState{seq: m.Sequence, node: node}
	if ns, err := strconv.ParseInt(until, 10, 64); err == nil {
		f.standing = time.Now().UnixNano() < ns
	}
	return f, nil
}

// Claim claims session id for node, unless another claim stands.
func (b *Broker) Claim(ctx context.Context, id, node string) (_ uint64, err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return 0, err
	}
	f, err := b.readFence(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("tether/broker/nats: reading the claims on session %q: %w", id, err)
	}
	return b.claimAfter(ctx, id, node, f)
}

// claimAfter claims session id for node if f, read before, is still the
// last claim and does not stand.
func (b *Broker) claimAfter(ctx context.Context, id, node string, f fenceState) (uint64, error) {
	if f.standing {
		return 0, fenced(id, f.node)
	}
	lease := 3 * b.o.Timeout
	until := strconv.FormatInt(time.Now().Add(lease).UnixNano(), 10)
	seq, err := b.writeFence(ctx, id, node+" "+until, f.seq, lease)
	if wrongLast(err) {
		return 0, fenced(id, "")
	}
	if err != nil {
		return 0, fmt.Errorf("tether/broker/nats: claiming session %q: %w", id, err)
	}
	return seq, nil
}

// Release releases claim on session id: one compare-and-set on the claim
// itself.
func (b *Broker) Release(ctx context.Context, id string, claim uint64) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	_, err = b.writeFence(ctx, id, released, claim, 3*b.o.Timeout)
	if wrongLast(err) {
		return fenced(id, "")
	}
	if err != nil {
		return fmt.Errorf("tether/broker/nats: releasing the claim on session %q: %w", id, err)
	}
	return nil
}

// released is the value of a released claim.
const released = "released"

// writeFence writes value on the claim subject of session id if its last
// message is at stream seq last (0: none), to live ttl, and returns its
// stream seq.
func (b *Broker) writeFence(ctx context.Context, id, value string, last uint64, ttl time.Duration) (uint64, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: b.subj.adopt(id), Data: []byte(value)},
		jetstream.WithExpectStream(b.subj.kvStream),
		jetstream.WithExpectLastSequencePerSubject(last),
		jetstream.WithMsgTTL(recordTTL(ttl)))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// fenced returns the error of a claim that another node's claim stands in
// the way of (node, when known).
func fenced(id, node string) error {
	by := "another node"
	if node != "" {
		by = "node " + node
	}
	return fmt.Errorf("tether/broker/nats: %s is taking session %q over at this moment: %w", by, id, broker.ErrFenced)
}

package nats

import (
	"bytes"
	"context"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A connected session's record lives RecordTTL after it was stored. The
// node that stored it stores it again, unchanged, every third of RecordTTL
// while the session stays connected, so that a session connected for
// longer than RecordTTL still resumes on another node after its node dies.
// Each refresh is a compare-and-set on the sequence of the node's own last
// write of that subject: once another node (the session moved there) or
// another record of the client id wrote it, the node stops refreshing it.

// refreshed is a record subject the node refreshes: its value and the
// stream seq of the node's last write of it.
type refreshed struct {
	data []byte
	seq  uint64
}

// refresher refreshes the records of the node's connected sessions.
type refresher struct {
	mu   sync.Mutex
	subj map[string]refreshed // by subject: P.rec.<id> and P.cid.<id>
}

// keep notes that the node stored data on subj at stream seq seq, to be
// refreshed.
func (r *refresher) keep(subj string, data []byte, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subj == nil {
		r.subj = make(map[string]refreshed)
	}
	r.subj[subj] = refreshed{data: data, seq: seq}
}

// drop stops refreshing subj.
func (r *refresher) drop(subj string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subj, subj)
}

// dropValue stops refreshing subj if its value is data.
func (r *refresher) dropValue(subj string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.subj[subj]; ok && bytes.Equal(cur.data, data) {
		delete(r.subj, subj)
	}
}

// due returns the subjects to refresh now.
func (r *refresher) due() map[string]refreshed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.subj)
}

// settled records the outcome of a refresh of subj that expected seq
// prev: stored at seq next, or superseded (another writer). A put by this
// node meanwhile (PutSession) wins over both.
func (r *refresher) settled(subj string, prev, next uint64, superseded bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.subj[subj]
	if !ok || cur.seq != prev {
		return
	}
	if superseded {
		delete(r.subj, subj)
		return
	}
	cur.seq = next
	r.subj[subj] = cur
}

// refreshEvery is how often records are refreshed: a third of RecordTTL,
// so that a refresh that fails (NATS briefly unreachable) is tried again
// before the record ends.
func (b *Broker) refreshEvery() time.Duration { return b.o.RecordTTL / 3 }

// refreshRecords is the goroutine that refreshes records until Close.
func (b *Broker) refreshRecords() {
	defer b.wg.Done()
	t := time.NewTicker(b.refreshEvery())
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.refreshDue()
		}
	}
}

// refreshDue refreshes every record the node keeps alive.
func (b *Broker) refreshDue() {
	defer b.recovered("refreshing session records")
	for subj, r := range b.records.due() {
		select {
		case <-b.done:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.o.Timeout)
		ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: r.data},
			jetstream.WithExpectStream(b.subj.kvStream),
			jetstream.WithExpectLastSequencePerSubject(r.seq),
			jetstream.WithMsgTTL(recordTTL(b.o.RecordTTL)))
		cancel()
		switch {
		case err == nil:
			b.records.settled(subj, r.seq, ack.Sequence, false)
		case wrongLast(err):
			b.records.settled(subj, r.seq, 0, true)
		default:
			b.o.Logger.Warn("tether: nats broker: refreshing a session record failed; trying again later", "subject", subj, "err", err)
		}
	}
}

// recordTTL is the per-message time to live of a record stored for ttl:
// JetStream counts whole seconds, and a second more covers the rounding.
func recordTTL(ttl time.Duration) time.Duration { return ttl.Round(time.Second) + time.Second }

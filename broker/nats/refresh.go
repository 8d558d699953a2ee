package nats

import (
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
// A refresh reads the subject and writes its value back by a
// compare-and-set on the sequence of the node's own last write: once
// another node (the session moved there) or another record of the client
// id wrote it, the node stops refreshing it. The node keeps only that
// sequence per subject, not the value.

// refresher refreshes the records of the node's connected sessions.
type refresher struct {
	mu   sync.Mutex
	subj map[string]uint64 // by subject (P.rec.<id>, P.cid.<id>): the seq of the node's last write
	cid  map[string]string // P.cid.<id> subjects refreshed → the session id they name
}

// keep notes that the node stored a record on subj at stream seq seq, to
// be refreshed.
func (r *refresher) keep(subj string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subj == nil {
		r.subj = make(map[string]uint64)
	}
	r.subj[subj] = seq
}

// keepClientID notes that the node stored session id on client id subject
// subj at stream seq seq, to be refreshed.
func (r *refresher) keepClientID(subj, id string, seq uint64) {
	r.keep(subj, seq)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cid == nil {
		r.cid = make(map[string]string)
	}
	r.cid[subj] = id
}

// drop stops refreshing subj.
func (r *refresher) drop(subj string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subj, subj)
	delete(r.cid, subj)
}

// dropClientID stops refreshing client id subject subj if it names
// session id.
func (r *refresher) dropClientID(subj, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cid[subj] == id {
		delete(r.subj, subj)
		delete(r.cid, subj)
	}
}

// due returns the subjects to refresh now, with the seq of the node's last
// write of each.
func (r *refresher) due() map[string]uint64 {
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
	if cur, ok := r.subj[subj]; !ok || cur != prev {
		return
	}
	if superseded {
		delete(r.subj, subj)
		delete(r.cid, subj)
		return
	}
	r.subj[subj] = next
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
	for subj, seq := range b.records.due() {
		select {
		case <-b.done:
			return
		default:
		}
		next, superseded, err := b.refresh(subj, seq)
		if err != nil {
			b.o.Logger.Warn("tether: nats broker: refreshing a session record failed; trying again later", "subject", subj, "err", err)
			continue
		}
		b.records.settled(subj, seq, next, superseded)
	}
}

// refresh stores the value of subj again if its last message is the
// node's write at stream seq seq, and returns the new write's seq; or
// superseded when another write came since.
func (b *Broker) refresh(subj string, seq uint64) (next uint64, superseded bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.o.Timeout)
	defer cancel()
	m, ok, err := b.get(ctx, subj)
	switch {
	case err != nil:
		return 0, false, err
	case !ok || m.Sequence != seq:
		return 0, true, nil
	}
	ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: m.Data},
		jetstream.WithExpectStream(b.subj.kvStream),
		jetstream.WithExpectLastSequencePerSubject(seq),
		jetstream.WithMsgTTL(recordTTL(b.o.RecordTTL)))
	switch {
	case wrongLast(err):
		return 0, true, nil
	case err != nil:
		return 0, false, err
	}
	return ack.Sequence, false, nil
}

// recordTTL is the per-message time to live of a record stored for ttl:
// JetStream counts whole seconds, and a second more covers the rounding.
func recordTTL(ttl time.Duration) time.Duration { return ttl.Round(time.Second) + time.Second }

package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

var _ broker.ClientSessions = (*Broker)(nil)

// PutSession stores rec, with a time to live: RecordTTL while connected,
// and past Expires by Retention once detached or closed (a closed session's
// record is the tombstone that tells a late resume why). A record with a
// client id that is not closed also becomes that client id's latest
// session, for parking.
func (b *Broker) PutSession(ctx context.Context, rec broker.SessionRecord) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	if rec.ID == "" {
		return errors.New("tether/broker/nats: a session record needs an ID")
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ttl := b.o.RecordTTL
	connected := rec.Expires.IsZero() && !rec.Closed
	if !rec.Expires.IsZero() {
		ttl = time.Until(rec.Expires) + b.o.Retention
	}
	ttl = max(ttl, time.Second)
	ctx, cancel := b.bound(ctx)
	defer cancel()
	subj := b.subj.record(rec.ID)
	if !connected {
		b.records.drop(subj)
		if rec.ClientID != "" {
			b.records.dropClientID(b.subj.clientID(rec.ClientID), rec.ID)
		}
	}
	seq, err := b.put(ctx, subj, data, ttl)
	if err != nil {
		return fmt.Errorf("tether/broker/nats: storing the record of session %q: %w", rec.ID, err)
	}
	if connected {
		b.records.keep(subj, seq)
	}
	if rec.ClientID != "" && !rec.Closed {
		cid := b.subj.clientID(rec.ClientID)
		seq, err := b.put(ctx, cid, []byte(rec.ID), ttl)
		if err != nil {
			return fmt.Errorf("tether/broker/nats: storing client id %q: %w", rec.ClientID, err)
		}
		if connected {
			b.records.keepClientID(cid, rec.ID, seq)
		}
	}
	return nil
}

// put stores data on subj for ttl and returns its stream seq.
func (b *Broker) put(ctx context.Context, subj string, data []byte, ttl time.Duration) (uint64, error) {
	ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data},
		jetstream.WithExpectStream(b.subj.kvStream), jetstream.WithMsgTTL(recordTTL(ttl)))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// get returns the value on subj, ok false when there is none.
func (b *Broker) get(ctx context.Context, subj string) (*jetstream.RawStreamMsg, bool, error) {
	ks, err := b.kvStream()
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	m, err := ks.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return m, true, nil
}

// GetSession reads the record of session id.
func (b *Broker) GetSession(ctx context.Context, id string) (_ broker.SessionRecord, _ bool, err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return broker.SessionRecord{}, false, err
	}
	if id == "" {
		return broker.SessionRecord{}, false, nil
	}
	m, ok, err := b.get(ctx, b.subj.record(id))
	if err != nil || !ok || len(m.Data) == 0 {
		if err != nil {
			err = fmt.Errorf("tether/broker/nats: reading the record of session %q: %w", id, err)
		}
		return broker.SessionRecord{}, false, err
	}
	var rec broker.SessionRecord
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		return broker.SessionRecord{}, false, fmt.Errorf("tether/broker/nats: the record of session %q is corrupt: %w", id, err)
	}
	return rec, true, nil
}

// ClientSession returns the id of the latest session stored for clientID
// (see [broker.ClientSessions]).
func (b *Broker) ClientSession(ctx context.Context, clientID string) (_ string, _ bool, err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return "", false, err
	}
	id, ok, err := b.clientSession(ctx, clientID)
	if err != nil {
		return "", false, fmt.Errorf("tether/broker/nats: reading the session of client id %q: %w", clientID, err)
	}
	return id, ok, nil
}

// clientSession returns the latest session id stored for a client id.
func (b *Broker) clientSession(ctx context.Context, clientID string) (string, bool, error) {
	m, ok, err := b.get(ctx, b.subj.clientID(clientID))
	if err != nil || !ok || len(m.Data) == 0 {
		return "", false, err
	}
	return string(m.Data), true, nil
}

// DeleteSession removes the record of session id.
func (b *Broker) DeleteSession(ctx context.Context, id string) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	if id == "" {
		return nil
	}
	ks, err := b.kvStream()
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	b.records.drop(b.subj.record(id))
	if err := ks.Purge(ctx, jetstream.WithPurgeSubject(b.subj.record(id))); err != nil {
		return fmt.Errorf("tether/broker/nats: deleting the record of session %q: %w", id, err)
	}
	return nil
}

// Seen records (scope, key) until now+window in JetStream: a
// compare-and-set on the key's subject makes exactly one caller, on any
// node, the first. The deadline is stored in the value and compared with
// the caller's clock; JetStream forgets the key after the window by a
// per-message time to live.
func (b *Broker) Seen(ctx context.Context, scope, key string, window time.Duration) (_ bool, err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return false, err
	}
	if b.local != nil {
		return b.local.Seen(ctx, scope, key, window)
	}
	if window <= 0 {
		return false, nil
	}
	subj := b.subj.seen(digest(scope, key))
	ctx, cancel := b.bound(ctx)
	defer cancel()
	record := func(last uint64) error {
		deadline := strconv.FormatInt(time.Now().Add(window).UnixNano(), 10)
		_, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: []byte(deadline)},
			jetstream.WithExpectStream(b.subj.kvStream),
			jetstream.WithExpectLastSequencePerSubject(last),
			jetstream.WithMsgTTL(window.Round(time.Second)+time.Second))
		return err
	}
	err = record(0)
	if err == nil {
		return false, nil
	}
	if !wrongLast(err) {
		return false, fmt.Errorf("tether/broker/nats: recording an idempotency key: %w", err)
	}
	m, ok, err := b.get(ctx, subj)
	if err != nil {
		return false, fmt.Errorf("tether/broker/nats: reading an idempotency key: %w", err)
	}
	if ok {
		if d, perr := strconv.ParseInt(string(m.Data), 10, 64); perr == nil && time.Now().UnixNano() < d {
			return true, nil
		}
	}
	var last uint64
	if ok {
		last = m.Sequence
	}
	switch err := record(last); {
	case err == nil:
		return false, nil
	case wrongLast(err):
		return true, nil // another caller recorded it just now
	default:
		return false, fmt.Errorf("tether/broker/nats: recording an idempotency key: %w", err)
	}
}

// Recorded reports whether (scope, key) is recorded and its window has not
// ended, reading its subject without writing it.
func (b *Broker) Recorded(ctx context.Context, scope, key string) (_ bool, err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return false, err
	}
	if b.local != nil {
		return b.local.Recorded(ctx, scope, key)
	}
	m, ok, err := b.get(ctx, b.subj.seen(digest(scope, key)))
	if err != nil {
		return false, fmt.Errorf("tether/broker/nats: reading an idempotency key: %w", err)
	}
	if !ok {
		return false, nil
	}
	d, perr := strconv.ParseInt(string(m.Data), 10, 64)
	return perr == nil && time.Now().UnixNano() < d, nil
}

// Forget removes (scope, key).
func (b *Broker) Forget(ctx context.Context, scope, key string) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	if b.local != nil {
		return b.local.Forget(ctx, scope, key)
	}
	ks, err := b.kvStream()
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	if err := ks.Purge(ctx, jetstream.WithPurgeSubject(b.subj.seen(digest(scope, key)))); err != nil {
		return fmt.Errorf("tether/broker/nats: forgetting an idempotency key: %w", err)
	}
	return nil
}

func digest(scope, key string) string {
	h := sha256.New()
	h.Write([]byte(strconv.Itoa(len(scope))))
	h.Write([]byte{0})
	h.Write([]byte(scope))
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

func wrongLast(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	return api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

package nats

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

var _ broker.Recorder = (*Broker)(nil)

// Record records (scope, key) until now+window, as Seen does for a new
// key but without the compare-and-set and without waiting: the key's
// subject gets one message, published by the appender goroutine in issue
// order with the log appends (so that an eviction's flush and Close wait
// for it too, though its failure is done's to report, not theirs), and
// done runs from JetStream's acknowledgement.
func (b *Broker) Record(scope, key string, window time.Duration, done func(error)) {
	if err := b.usable(); err != nil {
		done(err)
		return
	}
	switch {
	case window <= 0:
		done(nil)
		return
	case b.local != nil:
		// DurabilityNode: keys are the node's, as Seen and Recorded keep
		// them; stored before Record returns.
		_, err := b.local.Seen(context.Background(), scope, key, window)
		done(err)
		return
	case !b.nc.IsConnected():
		done(unavailable(fmt.Errorf("tether/broker/nats: NATS is unreachable (%s): the idempotency key was not recorded", b.nc.Status())))
		return
	}
	msg := &nats.Msg{
		Subject: b.subj.seen(digest(scope, key)),
		Data:    strconv.AppendInt(nil, time.Now().Add(window).UnixNano(), 10),
		Header:  nats.Header{},
	}
	msg.Header.Set(jetstream.ExpectedStreamHeader, b.subj.kvStream)
	msg.Header.Set(jetstream.MsgTTLHeader, recordTTL(window).String())
	b.issue(msg, &pend{done: make(chan struct{}), key: true, onAck: func(_ uint64, err error) {
		if err != nil {
			err = fmt.Errorf("tether/broker/nats: recording an idempotency key: %w", err)
			b.callErr(&err)
		}
		done(err)
	}})
}

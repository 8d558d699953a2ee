package nats

import (
	"errors"
	"testing"

	"github.com/tetherhq/tether/broker"
)

// A Publish reports its own message's append, not another session's that
// failed meanwhile (it would re-send a message that was stored); when its
// message has no append among them, every failure counts, as for a flush.
func TestSettleForReportsTheMessagesOwnAppend(t *testing.T) {
	t.Parallel()
	mine, other := &broker.Message{}, &broker.Message{}
	failed := errors.New("nats: timeout waiting for ack")
	done := func(id uint64, of *broker.Message, err error) *pend {
		p := &pend{id: id, done: make(chan struct{}), of: of, err: err}
		close(p.done)
		return p
	}
	for _, tc := range []struct {
		name    string
		pending []*pend
		of      *broker.Message
		wantErr bool
	}{
		{"another's append failed", []*pend{done(1, other, failed), done(2, mine, nil)}, mine, false},
		{"its own append failed", []*pend{done(1, other, nil), done(2, mine, failed)}, mine, true},
		{"no append of its own", []*pend{done(1, other, failed)}, mine, true},
		{"a flush: every append", []*pend{done(1, other, failed), done(2, mine, nil)}, nil, true},
		{"a key's failure is its caller's", []*pend{{id: 1, done: closedChan(), key: true, err: failed}, done(2, mine, nil)}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &Broker{pending: tc.pending}
			err := b.settleRange(t.Context(), 0, uint64(len(tc.pending)), tc.of)
			if (err != nil) != tc.wantErr {
				t.Fatalf("settleRange = %v; want an error: %v", err, tc.wantErr)
			}
		})
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

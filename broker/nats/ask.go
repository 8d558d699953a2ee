package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// lameGrace is how long a request that a lame node answered waits for the
// live holder's answer before it concludes that there is none. A live
// holder answers once its log append is stored: well within it.
const lameGrace = time.Second

// Answers on routes besides a count or an eviction's outcome.
const (
	replyLame    = "lame"    // the node unbound the address a moment ago
	replyForeign = "foreign" // Evict: the client id is another principal's
	replyErr     = "err:"    // prefix: the node took the message but could not store it
)

// asker sends requests that may reach several nodes (a live holder and
// lame ones) and collects their answers on one wildcard inbox
// subscription.
type asker struct {
	prefix string // the inbox prefix; a request's token follows
	mu     sync.Mutex
	next   uint64
	wait   map[string]chan *nats.Msg
	sub    *nats.Subscription
}

func (a *asker) start(nc *nats.Conn) error {
	a.prefix = nc.NewInbox() + "."
	a.wait = make(map[string]chan *nats.Msg)
	sub, err := nc.Subscribe(a.prefix+"*", func(m *nats.Msg) {
		a.mu.Lock()
		ch := a.wait[m.Subject[len(a.prefix):]]
		a.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default: // more answers than anyone waits for
			}
		}
	})
	if err != nil {
		return fmt.Errorf("nats broker: subscribing to answers: %w", err)
	}
	a.sub = sub
	return nil
}

// errNoHolder reports that no live node holds the address.
var errNoHolder = errors.New("no live holder")

// ask publishes msg as a request and returns the first answer from a live
// holder, or errNoHolder when there are no responders or only lame ones.
func (b *Broker) ask(ctx context.Context, msg *nats.Msg) ([]byte, error) {
	a := &b.asker
	ch := make(chan *nats.Msg, 4)
	a.mu.Lock()
	a.next++
	tok := strconv.FormatUint(a.next, 36)
	a.wait[tok] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.wait, tok)
		a.mu.Unlock()
	}()
	msg.Reply = a.prefix + tok
	if err := b.nc.PublishMsg(msg); err != nil {
		return nil, err
	}
	var grace <-chan time.Time
	for {
		select {
		case r := <-ch:
			switch {
			case len(r.Data) == 0 && r.Header.Get("Status") == "503":
				return nil, errNoHolder // no responders
			case string(r.Data) == replyLame:
				if grace == nil {
					t := time.NewTimer(lameGrace)
					defer t.Stop()
					grace = t.C
				}
			default:
				return r.Data, nil
			}
		case <-grace:
			return nil, errNoHolder
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

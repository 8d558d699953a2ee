package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
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
	replyFull    = "full"    // the session's outbound log is full: nothing was queued (broker.ErrFull)
	replyBehind  = "behind"  // a pipelined message whose earlier one did not arrive here (see fence)
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
	alive  *nats.Subscription // the node's liveness subject
}

// start subscribes to answers, and to the node's liveness subject, which
// answers every request at once from the NATS connection's own goroutine.
func (a *asker) start(nc *nats.Conn, liveness string) error {
	alive, err := nc.Subscribe(liveness, func(m *nats.Msg) { _ = m.Respond([]byte("ok")) })
	if err != nil {
		return fmt.Errorf("tether/broker/nats: subscribing to the node's liveness subject: %w", err)
	}
	a.alive = alive
	if err := a.subscribe(nc); err != nil {
		_ = alive.Unsubscribe()
		return err
	}
	return nil
}

// stop unsubscribes.
func (a *asker) stop() {
	if a.sub != nil {
		_ = a.sub.Unsubscribe()
	}
	if a.alive != nil {
		_ = a.alive.Unsubscribe()
	}
}

func (a *asker) subscribe(nc *nats.Conn) error {
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
		return fmt.Errorf("tether/broker/nats: subscribing to answers: %w", err)
	}
	a.sub = sub
	return nil
}

// errNoHolder reports that no live node holds the address.
var errNoHolder = errors.New("no live holder")

// ask publishes msg as a request to addr and returns the first answer from
// a live holder, or errNoHolder when there are no responders or only lame
// ones (see send and await).
func (b *Broker) ask(ctx context.Context, addr broker.Address, msg *nats.Msg) ([]byte, error) {
	q, err := b.send(msg)
	if err != nil {
		return nil, err
	}
	return b.await(ctx, addr, q)
}

// asked is a request on its way: the token its answers come back with.
type asked struct {
	tok string
	ch  chan *nats.Msg
}

// send publishes msg as a request whose answers await collects.
func (b *Broker) send(msg *nats.Msg) (*asked, error) {
	a := &b.asker
	q := &asked{ch: make(chan *nats.Msg, 4)}
	a.mu.Lock()
	a.next++
	q.tok = strconv.FormatUint(a.next, 36)
	a.wait[q.tok] = q.ch
	a.mu.Unlock()
	msg.Reply = a.prefix + q.tok
	if err := b.nc.PublishMsg(msg); err != nil {
		b.forget(q)
		return nil, err
	}
	return q, nil
}

// forget stops collecting q's answers.
func (b *Broker) forget(q *asked) {
	a := &b.asker
	a.mu.Lock()
	delete(a.wait, q.tok)
	a.mu.Unlock()
}

// await returns the first answer to q from a live holder of addr, or
// errNoHolder when there are no responders or only lame ones. While no
// answer comes, it checks every Heartbeat that the node holding addr lives
// (see holderAlive), and fails as soon as it does not.
func (b *Broker) await(ctx context.Context, addr broker.Address, q *asked) ([]byte, error) {
	defer b.forget(q)
	ch := q.ch
	var grace <-chan time.Time
	beat := time.NewTicker(b.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-beat.C:
			if err := b.holderAlive(ctx, addr); err != nil {
				select {
				case r := <-ch: // answered just before it died
					ch <- r
					continue
				default:
				}
				return nil, err
			}
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
		case <-b.done:
			return nil, broker.ErrClosed
		}
	}
}

// holderGone reports that the node holding an address does not answer on
// its liveness subject: its NATS connection is gone, or it is stuck.
type holderGone struct {
	node string
	err  error
}

func (e holderGone) Error() string {
	return fmt.Sprintf("node %s holding it does not answer (%v)", e.node, e.err)
}

// holderAlive returns a holderGone error when the node that the records
// name as addr's holder does not answer a request on its liveness subject
// within Heartbeat: NATS has no subscriber for it (the node's connection
// closed) or nobody answers (the node or its connection hangs). It returns
// nil when the node answers, when no record names one, when the records
// name this node, and on any other failure (left to the caller's own
// deadline).
func (b *Broker) holderAlive(ctx context.Context, addr broker.Address) error {
	node, ok := b.holderNode(ctx, addr)
	if !ok || node == b.node {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, b.o.Heartbeat)
	defer cancel()
	_, err := b.nc.RequestWithContext(pctx, b.subj.liveness(node), nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return holderGone{node: node, err: err}
	default:
		return nil
	}
}

// holderNode returns the node that the records name as addr's holder.
func (b *Broker) holderNode(ctx context.Context, addr broker.Address) (string, bool) {
	id := addr.Name
	if addr.Kind == broker.KindClient {
		sid, ok, err := b.clientSession(ctx, addr.Name)
		if err != nil || !ok {
			return "", false
		}
		id = sid
	}
	if addr.Kind == broker.KindTopic {
		return "", false
	}
	rec, ok, err := b.GetSession(ctx, id)
	if err != nil || !ok || rec.Node == "" || rec.Closed {
		return "", false
	}
	return rec.Node, true
}

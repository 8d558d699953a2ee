package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
)

// hookConn chains the broker's handlers in front of any nc already had.
func (b *Broker) hookConn() {
	prevDisc, prevRecon, prevErr := b.nc.Opts.DisconnectedErrCB, b.nc.Opts.ReconnectedCB, b.nc.Opts.AsyncErrorCB
	b.nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		defer b.recovered("the NATS disconnect handler")
		if err == nil {
			err = errors.New("disconnected")
		}
		b.recheck.Store(true)
		switch {
		case b.closed.Load(): // the broker's own Close: not a failure
		case nc.IsClosed():
			b.setHealth(errors.New("NATS connection closed"))
		default:
			b.setHealth(fmt.Errorf("NATS unreachable: %w; reconnecting", err))
		}
		if prevDisc != nil {
			prevDisc(nc, err)
		}
	})
	b.nc.SetReconnectHandler(func(nc *nats.Conn) {
		defer b.recovered("the NATS reconnect handler")
		// Healthy once afterReconnect has checked the streams and the
		// sessions: until then calls that need JetStream may fail (it may
		// be electing a leader) and the node delivers nothing.
		b.setHealth(errors.New("NATS reconnected: checking the JetStream streams and this node's sessions"))
		b.bindMu.Lock() // Close waits for the goroutines it knows of
		if !b.closed.Load() {
			b.wg.Add(1)
			go b.afterReconnect()
		}
		b.bindMu.Unlock()
		if prevRecon != nil {
			prevRecon(nc)
		}
	})
	b.nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		defer b.recovered("the NATS error handler")
		if errors.Is(err, nats.ErrSlowConsumer) {
			b.o.Logger.Error("tether: nats broker: routed messages dropped: the node cannot deliver as fast as they arrive", "err", err)
		} else {
			b.o.Logger.Warn("tether: nats broker: NATS error", "err", err)
		}
		if prevErr != nil {
			prevErr(nc, sub, err)
		}
	})
}

// afterReconnect runs after each reconnect, in the background: it checks
// which of the node's sessions another node took over while this one was
// cut off and releases them, then delivers what was parked for the node's
// sessions and client ids meanwhile (a poke sent then was lost), and guards
// them as after a bind. Until the check is done, the node delivers nothing
// to its sessions: publishers park instead.
func (b *Broker) afterReconnect() {
	defer b.wg.Done()
	defer b.recovered("checking sessions after a reconnect")
	b.ownMu.Lock() // one check at a time
	defer b.ownMu.Unlock()
	// Retried while connected: until the check passes, the node's sessions
	// get nothing (publishers park), so giving up is not an option. A new
	// disconnection ends the loop; the next reconnect starts another.
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		if b.usable() != nil || !b.recheck.Load() || !b.nc.IsConnected() {
			return
		}
		if b.recheckOnce() {
			break
		}
		select {
		case <-b.done:
			return
		case <-time.After(wait):
		}
	}
	// What was parked meanwhile is delivered below. Every address is owed
	// a drain before the node delivers again: a message that comes once
	// recheck is clear drains what was parked first instead of
	// overtaking it while its drain below waits for a worker.
	b.bindMu.Lock()
	var addrs []broker.Address
	var binds []*binding
	for a, bd := range b.binds {
		if a.Kind != broker.KindTopic && bd.n > 0 {
			addrs, binds = append(addrs, a), append(binds, bd)
			bd.owed.Store(true)
		}
	}
	b.bindMu.Unlock()
	b.recheck.Store(false)
	b.setHealth(nil)
	b.parallel(len(addrs), func(i int) bool {
		a, bd := addrs[i], binds[i]
		ctx, cancel := b.bound(context.Background())
		defer cancel()
		bd.guard.Lock()
		defer bd.guard.Unlock()
		if _, err := b.drainLocked(ctx, a, bd); err != nil {
			b.o.Logger.Warn("tether: nats broker: reading parked messages after a reconnect failed", "target", a.Kind.String(), "err", err)
		}
		return true
	})
}

// recheckOnce recreates the streams if need be and checks ownership; it
// reports whether both succeeded.
func (b *Broker) recheckOnce() bool {
	// A NATS server that lost its storage lost the streams too.
	ctx, cancel := b.bound(context.Background())
	err := b.createStreams(ctx)
	cancel()
	if err != nil {
		b.o.Logger.Warn("tether: nats broker: recreating the streams after a reconnect failed; retrying", "err", err)
		return false
	}
	return b.checkOwnership()
}

// checkOwnership releases, as if evicted, the sessions this node holds that
// another node took over while this one was cut off from NATS. It reports
// whether every session could be checked.
func (b *Broker) checkOwnership() bool {
	b.bindMu.Lock()
	var ids []string
	for a, bd := range b.binds {
		if a.Kind == broker.KindSession && bd.n > 0 {
			ids = append(ids, a.Name)
		}
	}
	b.bindMu.Unlock()
	return b.parallel(len(ids), func(i int) bool {
		id := ids[i]
		ctx, cancel := b.bound(context.Background())
		defer cancel()
		node, err := b.sessionNode(ctx, id)
		if err != nil {
			b.o.Logger.Warn("tether: nats broker: checking session ownership after a reconnect failed", "session", id, "err", err)
			return false
		}
		if node != "" && node != b.node {
			b.o.Logger.Info("tether: nats broker: a session moved while NATS was unreachable; releasing it here", "session", id, "node", node)
			// The new holder read the log without what this node
			// could not store: that is handed on, not written.
			b.logMu.Lock()
			if st := b.logs[id]; st != nil {
				st.moved.Store(true)
			}
			b.logMu.Unlock()
			if err := b.receiver.Evict(broker.Eviction{Session: id, Node: node}); err != nil {
				b.o.Logger.Warn("tether: nats broker: releasing a moved session failed", "session", id, "err", err)
			}
		}
		return true
	})
}

// noteMove notes that node e.Node is taking session e.Session over, when
// no live node answered e's eviction. Its holder may be cut off from NATS:
// it misses the eviction and, back, checks whether its sessions moved
// (checkOwnership). The session's record names the new holder only once
// that holder has read the log and attached the session, and a check in
// between would keep the session there, writing the log the new holder
// owns; the note names the new holder at once. Evict then asks again: a
// holder back before the note was written, and so checked without it,
// was subscribed again before it checked, and gets the eviction.
func (b *Broker) noteMove(ctx context.Context, e broker.Eviction) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	if _, err := b.put(ctx, b.subj.move(e.Session), []byte(e.Node), b.o.RecordTTL); err != nil {
		return fmt.Errorf("tether/broker/nats: noting that session %q moves to node %s: %w", e.Session, e.Node, err)
	}
	return nil
}

// sessionNode returns the node holding session id, as far as the records
// tell: the node that last noted it was taking the session over (see
// noteMove) or the one the session's record names, whichever was written
// last; "" when neither is known.
func (b *Broker) sessionNode(ctx context.Context, id string) (string, error) {
	rm, recOK, err := b.get(ctx, b.subj.record(id))
	if err != nil {
		return "", fmt.Errorf("tether/broker/nats: reading the record of session %q: %w", id, err)
	}
	mm, moveOK, err := b.get(ctx, b.subj.move(id))
	if err != nil {
		return "", fmt.Errorf("tether/broker/nats: reading who takes session %q over: %w", id, err)
	}
	if moveOK && (!recOK || mm.Sequence > rm.Sequence) {
		return string(mm.Data), nil
	}
	if !recOK || len(rm.Data) == 0 {
		return "", nil
	}
	var rec broker.SessionRecord
	if err := json.Unmarshal(rm.Data, &rec); err != nil {
		return "", fmt.Errorf("tether/broker/nats: the record of session %q is corrupt: %w", id, err)
	}
	return rec.Node, nil
}

// parallel runs f(0..n-1) on a few goroutines and reports whether every
// call returned true.
func (b *Broker) parallel(n int, f func(i int) bool) bool {
	const workers = 16
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || b.closed.Load() {
					return
				}
				if !b.safely("checking sessions after a reconnect", func() bool { return f(i) }) {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return !failed.Load() && !b.closed.Load()
}

// NotifyHealth calls f now and on every change: nil while NATS is
// reachable (after a reconnect, once the node has checked the JetStream
// streams and which of its sessions moved), the reason while it is not.
func (b *Broker) NotifyHealth(f func(err error)) {
	b.healthMu.Lock()
	b.health = append(b.health, f)
	err := b.lastErr
	b.healthMu.Unlock()
	f(err)
}

func (b *Broker) setHealth(err error) {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if sameErr(err, b.lastErr) {
		return
	}
	b.lastErr = err
	for _, f := range b.health {
		f(err)
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// recovered, deferred by a background goroutine (or one step of its loop),
// turns a panic into an error log with its stack and a count (see
// [Broker.Collect]), so that one bad message or NATS state does not kill
// the node. A step cut short by a panic that another step would redo is
// left to it: the purger, the reconnect check and deliveries are retried
// by their next trigger.
func (b *Broker) recovered(where string) {
	p := recover()
	if p == nil {
		return
	}
	b.panics.Add(1)
	b.o.Logger.Error("tether: nats broker: recovered from a panic; please report it", "in", where, "panic", p, "stack", string(debug.Stack()))
}

// safely returns f(), or false if f panicked (see recovered).
func (b *Broker) safely(where string, f func() bool) (ok bool) {
	defer b.recovered(where)
	return f()
}

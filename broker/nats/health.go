package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
)

// hookConn chains the broker's handlers in front of any nc already had.
func (b *Broker) hookConn() {
	prevDisc, prevRecon, prevErr := b.nc.Opts.DisconnectedErrCB, b.nc.Opts.ReconnectedCB, b.nc.Opts.AsyncErrorCB
	b.nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		if err == nil {
			err = errors.New("disconnected")
		}
		b.recheck.Store(true)
		if nc.IsClosed() {
			b.setHealth(errors.New("NATS connection closed"))
		} else {
			b.setHealth(fmt.Errorf("NATS unreachable: %w; reconnecting", err))
		}
		if prevDisc != nil {
			prevDisc(nc, err)
		}
	})
	b.nc.SetReconnectHandler(func(nc *nats.Conn) {
		b.setHealth(nil)
		go b.afterReconnect()
		if prevRecon != nil {
			prevRecon(nc)
		}
	})
	b.nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			b.o.Logger.Error("tether nats broker: routed messages dropped: the node cannot deliver as fast as they arrive", "err", err)
		} else {
			b.o.Logger.Warn("tether nats broker: NATS error", "err", err)
		}
		if prevErr != nil {
			prevErr(nc, sub, err)
		}
	})
}

// afterReconnect checks ownership, then delivers what was parked for the
// node's sessions and client ids while it was cut off (a poke sent then was
// lost), and guards them as after a bind.
func (b *Broker) afterReconnect() {
	if b.usable() != nil {
		return
	}
	ctx, cancel := b.bound(context.Background())
	defer cancel()
	if !b.owned(ctx) {
		return // disconnected again; the next reconnect retries
	}
	b.bindMu.Lock()
	var addrs []broker.Address
	var binds []*binding
	for a, bd := range b.binds {
		if a.Kind != broker.KindTopic && bd.n > 0 {
			addrs, binds = append(addrs, a), append(binds, bd)
		}
	}
	b.bindMu.Unlock()
	for i, a := range addrs {
		bd := binds[i]
		bd.guard.Lock()
		bd.until.Store(time.Now().Add(guardPeriod).UnixNano())
		err := b.drainLocked(ctx, a, bd)
		bd.guard.Unlock()
		if err != nil {
			b.o.Logger.Warn("tether nats broker: reading parked messages after a reconnect failed", "target", a.Kind.String(), "err", err)
		}
	}
}

// owned reports whether the node's sessions are known to be its own: true
// unless the connection dropped since the last check and the check cannot
// be made now.
func (b *Broker) owned(ctx context.Context) bool {
	if !b.recheck.Load() {
		return true
	}
	b.ownMu.Lock()
	defer b.ownMu.Unlock()
	if !b.recheck.Load() {
		return true
	}
	if !b.nc.IsConnected() {
		return false
	}
	if b.checkOwnership(ctx) {
		b.recheck.Store(false)
	}
	return !b.recheck.Load()
}

// checkOwnership releases, as if evicted, the sessions this node holds that
// another node took over while this one was cut off from NATS. It reports
// whether every session could be checked. ownMu is held.
func (b *Broker) checkOwnership(ctx context.Context) bool {
	b.bindMu.Lock()
	var ids []string
	for a, bd := range b.binds {
		if a.Kind == broker.KindSession && bd.n > 0 {
			ids = append(ids, a.Name)
		}
	}
	b.bindMu.Unlock()
	complete := true
	for _, id := range ids {
		rec, ok, err := b.GetSession(ctx, id)
		if err != nil {
			b.o.Logger.Warn("tether nats broker: checking session ownership after a reconnect failed", "session", id, "err", err)
			complete = false
			continue
		}
		if ok && rec.Node != "" && rec.Node != b.node {
			b.o.Logger.Info("tether nats broker: a session moved while NATS was unreachable; releasing it here", "session", id, "node", rec.Node)
			if err := b.receiver.Evict(broker.Eviction{Session: id, Node: rec.Node}); err != nil {
				b.o.Logger.Warn("tether nats broker: releasing a moved session failed", "session", id, "err", err)
			}
		}
	}
	return complete
}

// NotifyHealth calls f now and on every change: nil while NATS is
// reachable, the reason while it is not.
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

package nats

import (
	"context"
	"errors"
	"fmt"

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
		b.setHealth(fmt.Errorf("NATS unreachable: %w; reconnecting", err))
		if prevDisc != nil {
			prevDisc(nc, err)
		}
	})
	b.nc.SetReconnectHandler(func(nc *nats.Conn) {
		b.setHealth(nil)
		go b.checkOwnership()
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

// checkOwnership runs after a reconnect: a session this node held may have
// been resumed on another node while this one was cut off. Such sessions
// are released here, as if evicted.
func (b *Broker) checkOwnership() {
	if b.usable() != nil {
		return
	}
	b.bindMu.Lock()
	var ids []string
	for a := range b.binds {
		if a.Kind == broker.KindSession {
			ids = append(ids, a.Name)
		}
	}
	b.bindMu.Unlock()
	for _, id := range ids {
		rec, ok, err := b.GetSession(context.Background(), id)
		if err != nil {
			b.o.Logger.Warn("tether nats broker: checking session ownership after a reconnect failed", "session", id, "err", err)
			continue
		}
		if ok && rec.Node != "" && rec.Node != b.node {
			b.o.Logger.Info("tether nats broker: a session moved while NATS was unreachable; releasing it here", "session", id, "node", rec.Node)
			if err := b.receiver.Evict(broker.Eviction{Session: id, Node: rec.Node}); err != nil {
				b.o.Logger.Warn("tether nats broker: releasing a moved session failed", "session", id, "err", err)
			}
		}
	}
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

package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
)

// A pipeline (broker.Pipeline) sends a sender's messages at once: a
// message for a session this node holds is delivered, one for a session
// another node holds goes out as a request, and the pipeline's goroutine
// then waits, in publish order, for what Publish would have waited for (the
// delivery's log appends stored, the holder's answer, a park) and reports
// it. So a sender pays one round trip per window of messages, not per
// message.
//
// Order across a move is kept by chaining. Each message carries its
// pipeline's id, its own number there, and the number of the message to
// the same target published before it and still on its way, if any
// ("after"). A node delivers a message with an "after" only if the last
// message of that pipeline it delivered to the address is that one: so
// nothing is delivered where its predecessor was refused (full, a failed
// drain) or never arrived (the session moved in between); it is answered
// "behind" instead, which the sender reports as unavailable and retries
// once its predecessor's fate is known. Likewise the sender does not park
// a message that found no holder when its predecessor did not arrive
// either (its holder died with it, say): parked, it would be delivered
// ahead of the predecessor's re-send.

// Headers of a pipelined message.
const (
	hdrPipe      = "Tether-Pipe"
	hdrPipeOp    = "Tether-Pipe-Op"
	hdrPipeAfter = "Tether-Pipe-After"
)

// maxFences bounds the pipelines one address remembers; past it the
// address forgets them all, which only makes their next message be
// answered "behind" once.
const maxFences = 1024

// errBehind is deliverLocal's answer to a pipelined message whose
// predecessor did not arrive here.
var errBehind = errors.New("behind")

// errBehindFor is the error a pipelined message answered "behind" reports.
func errBehindFor(m *broker.Message) error {
	return unavailable(fmt.Errorf("tether/broker/nats: %s %q moved, or refused an earlier message, while earlier messages to it were on their way: this one was not delivered; send it again after them", m.Target.Kind, m.Target.Name))
}

// chain is a pipelined message's place in its pipeline (the zero chain:
// not pipelined).
type chain struct {
	pipe      string
	op, after uint64
}

// chainOf returns the chain a routed message carries.
func chainOf(msg *nats.Msg) chain {
	pipe := msg.Header.Get(hdrPipe)
	if pipe == "" {
		return chain{}
	}
	op, _ := strconv.ParseUint(msg.Header.Get(hdrPipeOp), 10, 64)
	after, _ := strconv.ParseUint(msg.Header.Get(hdrPipeAfter), 10, 64)
	return chain{pipe: pipe, op: op, after: after}
}

// header returns h with f added (h may be nil).
func (f chain) header(h nats.Header) nats.Header {
	if h == nil {
		h = nats.Header{}
	}
	h[hdrPipe] = []string{f.pipe}
	h[hdrPipeOp] = []string{strconv.FormatUint(f.op, 10)}
	if f.after != 0 {
		h[hdrPipeAfter] = []string{strconv.FormatUint(f.after, 10)}
	}
	return h
}

// chains are the last message of each pipeline delivered to one address.
type chains struct {
	mu   sync.Mutex
	last map[string]uint64
}

// admit reports whether the message f may be delivered: its predecessor,
// if any, was the last of its pipeline delivered here.
func (fs *chains) admit(f chain) bool {
	if f.after == 0 {
		return true
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.last[f.pipe] == f.after
}

// settle records what became of the message f: delivered, or not (then
// the messages behind it are not either).
func (fs *chains) settle(f chain, delivered bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !delivered {
		delete(fs.last, f.pipe)
		return
	}
	if _, ok := fs.last[f.pipe]; !ok && len(fs.last) >= maxFences {
		clear(fs.last)
	}
	if fs.last == nil {
		fs.last = make(map[string]uint64)
	}
	fs.last[f.pipe] = f.op
}

// pipelines numbers the pipelines of all brokers in this process; with
// the broker's instance, random, it names them.
var pipelines atomic.Uint64

// Pipeline returns a new pipeline (see broker.Pipeliner).
func (b *Broker) Pipeline() broker.Pipeline {
	return &pipeline{
		b:         b,
		id:        b.instance + "." + strconv.FormatUint(pipelines.Add(1), 36),
		last:      make(map[broker.Address]uint64),
		delivered: make(map[broker.Address]uint64),
	}
}

// pipeline is one sender's broker.Pipeline.
type pipeline struct {
	b  *Broker
	id string

	mu      sync.Mutex
	next    uint64                    // the last op's number
	ops     []*pipeOp                 // on their way, in publish order
	last    map[broker.Address]uint64 // the latest op on its way to each target
	running bool                      // the goroutine (run) runs
	// delivered is, per target, the last op that reached it (run's
	// own: no lock).
	delivered map[broker.Address]uint64
}

// pipeOp is one message on its way: what Publish did at once, and what its
// goroutine waits for.
type pipeOp struct {
	id   uint64
	ctx  context.Context
	m    *broker.Message
	done func(int, error)
	// after is the op to the same target on its way as this one left (0:
	// none), and orphan is set (by run) when that one did not reach its
	// target: then this one must not either, not even parked.
	after  uint64
	orphan bool

	n   int
	err error // failed at once
	// settle: delivered on this node; its appends, issued in (lo, hi],
	// are to be stored.
	settle bool
	lo, hi uint64
	q      *asked // routed to another node: its answer
}

// Publish sends m on its way and returns (see broker.Pipeline).
func (p *pipeline) Publish(ctx context.Context, m *broker.Message, done func(int, error)) {
	op := &pipeOp{ctx: ctx, m: m, done: done}
	p.mu.Lock()
	p.next++
	op.id = p.next
	op.after = p.last[m.Target]
	f := chain{pipe: p.id, op: op.id, after: op.after}
	p.mu.Unlock()
	p.b.start(op, f)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops = append(p.ops, op)
	p.last[m.Target] = op.id
	if !p.running {
		p.running = true
		go p.run()
	}
}

// run reports the ops' fates in order, and returns once none is left.
func (p *pipeline) run() {
	for {
		p.mu.Lock()
		if len(p.ops) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		op := p.ops[0]
		p.mu.Unlock()
		op.orphan = op.after != 0 && p.delivered[op.m.Target] != op.after
		n, err := p.b.finish(op)
		if n > 0 && err == nil {
			p.delivered[op.m.Target] = op.id
		} else {
			delete(p.delivered, op.m.Target)
		}
		// Done before its target's entry goes: a message published
		// meanwhile is chained behind this one, which its sender may
		// not yet know failed.
		op.done(n, err)
		p.mu.Lock()
		p.ops[0] = nil
		p.ops = p.ops[1:]
		if p.last[op.m.Target] == op.id {
			delete(p.last, op.m.Target)
			delete(p.delivered, op.m.Target) // nothing follows it
		}
		p.mu.Unlock()
	}
}

// start does what Publish does before it would wait: delivers op's message
// on this node, or sends it to the node that holds its target.
func (b *Broker) start(op *pipeOp, f chain) {
	m := op.m
	if err := b.usable(); err != nil {
		op.err = err
		return
	}
	if m.Target.Kind == broker.KindTopic {
		op.n, op.err = b.Publish(op.ctx, m) // never waits for an answer
		return
	}
	subj, err := b.subj.route(m.Target)
	if err != nil {
		op.err = err
		return
	}
	mark := b.mark()
	fails := b.appendFails.Load()
	switch n, err := b.deliverLocal(op.ctx, m, b.marks.last(m.Target), f); {
	case errors.Is(err, errBehind):
		op.err = errBehindFor(m)
		return
	case err != nil:
		op.err = err // full: held here, so not parked
		return
	case n > 0:
		op.n, op.settle, op.lo, op.hi = n, true, mark, b.mark()
		return
	case b.appendFails.Load() != fails:
		op.err = unavailable(fmt.Errorf("tether/broker/nats: the message reached %s %q on this node, whose log append failed: it was not sent; retry", m.Target.Kind, m.Target.Name))
		return
	}
	if !b.nc.IsConnected() {
		op.err = unavailable(fmt.Errorf("tether/broker/nats: NATS is unreachable (%s): the message was not sent; retry", b.nc.Status()))
		return
	}
	op.q, op.err = b.send(&nats.Msg{Subject: subj, Data: encodeMessage(nil, m, 0), Header: f.header(b.marks.header(m.Target))})
}

// finish waits for what op's Publish would have waited for and returns its
// results.
func (b *Broker) finish(op *pipeOp) (n int, err error) {
	defer b.callErr(&err)
	switch {
	case op.settle && op.hi > op.lo:
		ctx, cancel := b.bound(context.WithoutCancel(op.ctx))
		defer cancel()
		return op.n, b.settleRange(ctx, op.lo, op.hi, op.m)
	case op.q != nil:
		// The answer is awaited even once the sender is gone (its
		// context ended): what arrived is reported. But nothing is
		// parked then, nor for an orphan: parked, it would arrive ahead
		// of its predecessor's re-send, or beside the sender's re-send
		// where the sender went.
		ctx, cancel := b.bound(context.WithoutCancel(op.ctx))
		defer cancel()
		reply, err := b.await(ctx, op.m.Target, op.q)
		return b.routed(ctx, op.m, reply, err, !op.orphan && op.ctx.Err() == nil)
	}
	return op.n, op.err
}

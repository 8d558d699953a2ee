package nats

import (
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
)

// A message a node parks (no node held its address, see park) must not be
// overtaken by the next message the same node publishes to that address,
// once a node holds it: a sender's messages keep their order. A node
// binding an address delivers what is parked for it, but a NATS cluster
// spreads the new subscription's interest over some time, during which a
// publisher whose NATS server has not heard of it yet still parks, after
// that drain. So a node remembers, for guardPeriod after each park, the
// stream seq of the last message it parked for the address, and sends it
// with its next messages to the address (header hdrParked, or the local
// delivery's argument): the holder delivers what is parked up to that seq
// first. A holder reads JetStream before a delivery only then, not before
// every delivery of a guard period after each bind.

// hdrParked carries, on a routed message, the stream seq of the last
// message its publisher parked for the same address in the last
// guardPeriod.
const hdrParked = "Tether-Parked"

// parkMarks is what a node parked lately, by address.
type parkMarks struct {
	mu      sync.Mutex
	m       map[broker.Address]parkMark
	pruneAt int // prune expired marks once the map holds this many
}

// parkMark is the last message a node parked for an address.
type parkMark struct {
	seq   uint64    // its stream seq
	until time.Time // when the mark lapses
}

// marksPrune is the smallest map size at which expired marks are pruned.
const marksPrune = 1024

// note records that seq was parked for addr, to be sent along for d.
func (p *parkMarks) note(addr broker.Address, seq uint64, d time.Duration) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[broker.Address]parkMark)
	}
	p.m[addr] = parkMark{seq: max(seq, p.m[addr].seq), until: now.Add(d)}
	if len(p.m) >= max(p.pruneAt, marksPrune) {
		for a, mk := range p.m {
			if !now.Before(mk.until) {
				delete(p.m, a)
			}
		}
		p.pruneAt = 2 * len(p.m)
	}
}

// last returns the stream seq of the last message parked for addr within
// the mark's period, or 0.
func (p *parkMarks) last(addr broker.Address) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	mk, ok := p.m[addr]
	switch {
	case !ok:
		return 0
	case !time.Now().Before(mk.until):
		delete(p.m, addr)
		return 0
	}
	return mk.seq
}

// header returns the header to send with a routed message to addr: the
// last park mark, if any; nil when there is none.
func (p *parkMarks) header(addr broker.Address) nats.Header {
	seq := p.last(addr)
	if seq == 0 {
		return nil
	}
	return nats.Header{hdrParked: []string{strconv.FormatUint(seq, 10)}}
}

// parkedSeq reads hdrParked from a routed message: 0 when absent.
func parkedSeq(msg *nats.Msg) uint64 {
	if msg.Header == nil {
		return 0
	}
	seq, _ := strconv.ParseUint(msg.Header.Get(hdrParked), 10, 64)
	return seq
}

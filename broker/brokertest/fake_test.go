package brokertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/brokertest"
)

// The fake is a shared broker in one process, written to check the suite
// itself: every call takes latency (seenLatency for Seen), a Bind reaches
// the other nodes only after propagation, topic messages reach other
// nodes asynchronously, and Seen compares a stored deadline with
// time.Now(), as a broker over a network would.
type fakeOptions struct {
	latency, seenLatency, propagation time.Duration
}

func TestFakeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("real time")
	}
	o := fakeOptions{latency: 200 * time.Microsecond, seenLatency: 10 * time.Millisecond, propagation: 20 * time.Millisecond}
	brokertest.Run(t, func(*testing.T) broker.Broker { return newHub(o).node() }, brokertest.RealTime(2*time.Second))
}

func TestFakeRunShared(t *testing.T) {
	if testing.Short() {
		t.Skip("real time")
	}
	o := fakeOptions{latency: time.Millisecond, seenLatency: 10 * time.Millisecond, propagation: 50 * time.Millisecond}
	brokertest.RunShared(t, func(*testing.T) func(*testing.T) broker.Broker {
		h := newHub(o)
		return func(*testing.T) broker.Broker { return h.node() }
	}, brokertest.RealTime(time.Second))
}

// hub is what the nodes of one fake cluster share.
type hub struct {
	o       fakeOptions
	mu      sync.Mutex
	nodes   []*fakeNode
	records map[string]broker.SessionRecord
	logs    map[string][]broker.Entry
	seen    map[[2]string]time.Time
	parked  map[broker.Address][]*broker.Message
}

func newHub(o fakeOptions) *hub {
	return &hub{
		o:       o,
		records: make(map[string]broker.SessionRecord),
		logs:    make(map[string][]broker.Entry),
		seen:    make(map[[2]string]time.Time),
		parked:  make(map[broker.Address][]*broker.Message),
	}
}

func (h *hub) node() *fakeNode {
	n := &fakeNode{
		h:       h,
		binds:   make(map[broker.Address]int),
		visible: make(map[broker.Address]bool),
		signal:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	h.mu.Lock()
	h.nodes = append(h.nodes, n)
	h.mu.Unlock()
	return n
}

// fakeNode is one node; h.mu guards its fields but dmu.
type fakeNode struct {
	h *hub
	// dmu orders the deliveries of session and client messages from other
	// nodes, kept ones first.
	dmu     sync.Mutex
	name    string
	r       broker.Receiver
	started bool
	closed  bool
	binds   map[broker.Address]int
	visible map[broker.Address]bool // binds the other nodes see
	queue   []*broker.Message       // topic messages from other nodes
	signal  chan struct{}
	done    chan struct{}
}

// call waits for d and reports ErrClosed after Close.
func (n *fakeNode) call(d time.Duration) error {
	time.Sleep(d)
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if n.closed {
		return broker.ErrClosed
	}
	return nil
}

func (n *fakeNode) Start(_ context.Context, name string, r broker.Receiver) error {
	time.Sleep(n.h.o.latency)
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	switch {
	case n.closed:
		return broker.ErrClosed
	case n.started || r == nil:
		return errors.New("fake: bad Start")
	}
	n.name, n.r, n.started = name, r, true
	go n.run()
	return nil
}

// run delivers the topic messages of other nodes, in order.
func (n *fakeNode) run() {
	for {
		select {
		case <-n.done:
			return
		case <-n.signal:
		}
		n.h.mu.Lock()
		q := n.queue
		n.queue = nil
		n.h.mu.Unlock()
		for _, m := range q {
			n.h.mu.Lock()
			ok := n.visible[m.Target] && !n.closed
			n.h.mu.Unlock()
			if ok {
				n.r.Deliver(m)
			}
		}
	}
}

func (n *fakeNode) Bind(_ context.Context, addr broker.Address) error {
	if err := n.call(n.h.o.latency); err != nil {
		return err
	}
	n.h.mu.Lock()
	n.binds[addr]++
	first := n.binds[addr] == 1
	n.h.mu.Unlock()
	if first {
		time.AfterFunc(n.h.o.propagation, func() { n.show(addr) })
	}
	return nil
}

// show makes addr visible to the other nodes, if still bound, and delivers
// what was kept for it first.
func (n *fakeNode) show(addr broker.Address) {
	n.dmu.Lock()
	defer n.dmu.Unlock()
	for {
		n.h.mu.Lock()
		if n.closed || n.binds[addr] == 0 {
			n.h.mu.Unlock()
			return
		}
		kept := n.h.parked[addr]
		delete(n.h.parked, addr)
		if len(kept) == 0 {
			n.visible[addr] = true
			n.h.mu.Unlock()
			return
		}
		n.h.mu.Unlock()
		for _, m := range kept {
			n.r.Deliver(m)
		}
	}
}

func (n *fakeNode) Unbind(_ context.Context, addr broker.Address) error {
	if err := n.call(n.h.o.latency); err != nil {
		return err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if n.binds[addr] > 0 {
		n.binds[addr]--
	}
	if n.binds[addr] == 0 {
		delete(n.binds, addr)
		delete(n.visible, addr)
	}
	return nil
}

// live reports whether a message to addr may be kept. h.mu is held.
func (h *hub) live(addr broker.Address) bool {
	ok := func(rec broker.SessionRecord) bool {
		return !rec.Closed && (rec.Expires.IsZero() || time.Now().Before(rec.Expires))
	}
	switch addr.Kind {
	case broker.KindSession:
		rec, found := h.records[addr.Name]
		return found && ok(rec)
	case broker.KindClient:
		for _, rec := range h.records {
			if rec.ClientID == addr.Name && ok(rec) {
				return true
			}
		}
	}
	return false
}

func (n *fakeNode) Publish(_ context.Context, m *broker.Message) (int, error) {
	if err := n.call(n.h.o.latency); err != nil {
		return 0, err
	}
	h := n.h
	h.mu.Lock()
	local := n.binds[m.Target] > 0
	var remote []*fakeNode
	for _, o := range h.nodes {
		if o != n && !o.closed && o.visible[m.Target] {
			remote = append(remote, o)
		}
	}
	if m.Target.Kind == broker.KindTopic {
		for _, o := range remote {
			o.queue = append(o.queue, m)
			select {
			case o.signal <- struct{}{}:
			default:
			}
		}
		remote = nil
	} else if !local && len(remote) == 0 && h.live(m.Target) {
		h.parked[m.Target] = append(h.parked[m.Target], m)
		h.mu.Unlock()
		return 1, nil
	}
	h.mu.Unlock()
	count := 0
	if local {
		k, err := n.r.Deliver(m)
		if err != nil {
			return 0, err
		}
		count += k
	}
	for _, o := range remote {
		o.dmu.Lock()
		k, _ := o.r.Deliver(m)
		o.dmu.Unlock()
		count += k
	}
	return count, nil
}

func (n *fakeNode) Seen(_ context.Context, scope, key string, window time.Duration) (bool, error) {
	if err := n.call(n.h.o.seenLatency); err != nil {
		return false, err
	}
	if window <= 0 {
		return false, nil
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	k := [2]string{scope, key}
	now := time.Now()
	if deadline, ok := n.h.seen[k]; ok && now.Before(deadline) {
		return true, nil
	}
	n.h.seen[k] = now.Add(window)
	return false, nil
}

func (n *fakeNode) Recorded(_ context.Context, scope, key string) (bool, error) {
	if err := n.call(n.h.o.seenLatency); err != nil {
		return false, err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	deadline, ok := n.h.seen[[2]string{scope, key}]
	return ok && time.Now().Before(deadline), nil
}

func (n *fakeNode) Forget(_ context.Context, scope, key string) error {
	if err := n.call(n.h.o.latency); err != nil {
		return err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	delete(n.h.seen, [2]string{scope, key})
	return nil
}

func (n *fakeNode) Log(id string) broker.Log { return &fakeLog{n: n, id: id} }

func (n *fakeNode) Shared() bool { return true }

func (n *fakeNode) Evict(_ context.Context, e broker.Eviction) error {
	if err := n.call(n.h.o.latency); err != nil {
		return err
	}
	n.h.mu.Lock()
	var holders []*fakeNode
	for _, o := range n.h.nodes {
		if o != n && !o.closed && (e.Session != "" && o.visible[broker.Session(e.Session)] || e.Client != "" && o.visible[broker.Client(e.Client)]) {
			holders = append(holders, o)
		}
	}
	n.h.mu.Unlock()
	var err error
	for _, o := range holders {
		if oerr := o.r.Evict(e); errors.Is(oerr, broker.ErrForeignClient) {
			err = fmt.Errorf("fake: node %s: %w", o.name, oerr)
		}
	}
	return err
}

func cloneRecord(rec broker.SessionRecord) broker.SessionRecord {
	rec.TokenHash = bytes.Clone(rec.TokenHash)
	rec.Topics = slices.Clone(rec.Topics)
	rec.Metadata = maps.Clone(rec.Metadata)
	return rec
}

func (n *fakeNode) PutSession(_ context.Context, rec broker.SessionRecord) error {
	if err := n.call(n.h.o.latency); err != nil {
		return err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	n.h.records[rec.ID] = cloneRecord(rec)
	return nil
}

func (n *fakeNode) GetSession(_ context.Context, id string) (broker.SessionRecord, bool, error) {
	if err := n.call(n.h.o.latency); err != nil {
		return broker.SessionRecord{}, false, err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	rec, ok := n.h.records[id]
	return cloneRecord(rec), ok, nil
}

func (n *fakeNode) DeleteSession(_ context.Context, id string) error {
	if err := n.call(n.h.o.latency); err != nil {
		return err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	delete(n.h.records, id)
	return nil
}

func (n *fakeNode) Close() error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if n.closed {
		return broker.ErrClosed
	}
	n.closed = true
	close(n.done)
	return nil
}

// fakeLog is a handle to a log of the hub.
type fakeLog struct {
	n  *fakeNode
	id string
}

func (l *fakeLog) Append(_ context.Context, e broker.Entry, capacity int) (broker.Appended, error) {
	if err := l.n.call(l.n.h.o.latency); err != nil {
		return broker.Appended{}, err
	}
	h := l.n.h
	h.mu.Lock()
	defer h.mu.Unlock()
	entries := h.logs[l.id]
	if capacity < 1 || len(entries) > 0 && e.Seq <= entries[len(entries)-1].Seq {
		return broker.Appended{}, errors.New("fake: bad Append")
	}
	entries = append(entries, e)
	dropped := max(0, len(entries)-capacity)
	entries = slices.Clone(entries[dropped:])
	h.logs[l.id] = entries
	return broker.Appended{Dropped: dropped, Len: len(entries)}, nil
}

func (l *fakeLog) Trim(_ context.Context, upTo uint64) error {
	if err := l.n.call(l.n.h.o.latency); err != nil {
		return err
	}
	h := l.n.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs[l.id] = slices.DeleteFunc(slices.Clone(h.logs[l.id]), func(e broker.Entry) bool { return e.Seq <= upTo })
	return nil
}

func (l *fakeLog) Read(_ context.Context, from uint64, fn func(broker.Entry) bool) error {
	if err := l.n.call(l.n.h.o.latency); err != nil {
		return err
	}
	h := l.n.h
	h.mu.Lock()
	entries := slices.Clone(h.logs[l.id])
	h.mu.Unlock()
	for _, e := range entries {
		if e.Seq >= from && !fn(e) {
			break
		}
	}
	return nil
}

func (l *fakeLog) Delete(_ context.Context) error {
	if err := l.n.call(l.n.h.o.latency); err != nil {
		return err
	}
	h := l.n.h
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.logs, l.id)
	return nil
}

package nats_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// orderReceiver records, per target, the numbers of the messages it was
// handed ("<target>/<n>"), in the order they came.
type orderReceiver struct {
	mu     sync.Mutex
	got    map[string][]int
	refuse atomic.Bool // take every message nowhere (Deliver returns 0)
}

func (r *orderReceiver) Deliver(m *broker.Message) (int, error) {
	if r.refuse.Load() {
		return 0, nil
	}
	name, num, _ := strings.Cut(string(m.Payload), "/")
	n, _ := strconv.Atoi(num)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[name] = append(r.got[name], n)
	return 1, nil
}

func (r *orderReceiver) Evict(broker.Eviction) error { return nil }

// overtaken returns, per target, how many messages arrived after a later
// one of the same target for the first time, and the first example.
func (r *orderReceiver) overtaken() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total, example := 0, ""
	for name, ns := range r.got {
		seen, highest := map[int]bool{}, -1
		for _, n := range ns {
			if !seen[n] && n < highest {
				total++
				if example == "" {
					example = name + ": " + strconv.Itoa(n) + " after " + strconv.Itoa(highest)
				}
			}
			seen[n] = true
			highest = max(highest, n)
		}
	}
	return total, example
}

// After a NATS outage, a message that a publisher parked while the
// holding node was still checking its sessions (it delivers nothing then)
// arrives before one published once the node reports itself healthy: a
// node back from an outage must not deliver a new message to an address
// while what was parked for it waits. (The chaos suite's nats-down case
// saw client messages reordered with no session reconnecting.)
//
// The two publishes run in the holder's health callbacks, which the node
// calls on its reconnect before it starts the check, and once the check
// passed: the first finds the node checking, the second the node just
// healthy, past the guard period of its bind.
func TestReconnectKeepsParkedOrder(t *testing.T) {
	t.Run("same publisher", func(t *testing.T) { testReconnectKeepsParkedOrder(t, false) })
	t.Run("another publisher", func(t *testing.T) { testReconnectKeepsParkedOrder(t, true) })
}

// testReconnectKeepsParkedOrder runs TestReconnectKeepsParkedOrder, the
// second message from another node than the first when other is set (it
// carries no park mark: the node owes the address a drain all the same).
func testReconnectKeepsParkedOrder(t *testing.T, other bool) {
	// The marks of the bind must have lapsed before the outage.
	const guard = 2 * time.Second
	srv := natstest.Start(t)
	o := natsbroker.Options{Prefix: newPrefix(), Replicas: 1, Timeout: 2 * time.Second, Logger: quiet()}
	open := func(id string, r broker.Receiver) *natsbroker.Broker {
		b, err := natsbroker.Connect(srv.URL(), o, nats.ReconnectWait(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		natsbroker.SetGuardPeriod(b, guard)
		must(t, b.Start(t.Context(), id, r))
		return b
	}
	holder := &orderReceiver{got: map[string][]int{}}
	h := open("H", holder)
	p := open("P", &orderReceiver{got: map[string][]int{}})
	second := p
	if other {
		second = open("Q", &orderReceiver{got: map[string][]int{}})
	}
	ctx := t.Context()
	must(t, h.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "H", Expires: time.Now().Add(time.Hour)}))
	must(t, h.Bind(ctx, broker.Session("s1")))
	bound := time.Now()

	var (
		mu      sync.Mutex
		down    bool // the holder lost NATS
		next    int  // the next message's number
		errs    []error
		healthy = make(chan struct{})
	)
	publish := func(p *natsbroker.Broker) {
		// The publisher reconnects on its own: retry until it has.
		m := &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/" + strconv.Itoa(next))}
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var n int
			if n, err = p.Publish(ctx, m); n == 1 && err == nil {
				next++
				return
			}
		}
		errs = append(errs, fmt.Errorf("publishing %s: %v", m.Payload, err))
	}
	h.NotifyHealth(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && strings.Contains(err.Error(), "checking") && next == 0:
			down = true
			publish(p) // parked: the holder delivers nothing until checked
		case err != nil:
			down = true
		case down && next == 1:
			publish(second)
			close(healthy)
		}
	})
	time.Sleep(time.Until(bound.Add(guard))) // the bind's guard ends: a known time, not a guess
	srv.Restart(t)
	select {
	case <-healthy:
	case <-time.After(30 * time.Second):
		t.Fatal("the holder did not report itself checking, then healthy, within 30s of the NATS restart")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range errs {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); holder.missing([]int{0, 2}) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages taken by Publish never arrived", holder.missing([]int{0, 2}))
		}
	}
	if n, example := holder.overtaken(); n > 0 {
		t.Fatalf("%d messages arrived after a later one to the same session (%s)", n, example)
	}
}

// missing returns how many of the messages 0..taken[i]-1 of each session
// s<i> have not arrived.
func (r *orderReceiver) missing(taken []int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing := 0
	for i, n := range taken {
		seen := map[int]bool{}
		for _, k := range r.got["s"+strconv.Itoa(i)] {
			seen[k] = true
		}
		for k := range n {
			if !seen[k] {
				missing++
			}
		}
	}
	return missing
}

// A message parked for an address under another node's standing claim
// (that node claimed it, could not deliver it and stopped: a node drained
// in a rolling restart while it delivered what was parked for a session
// that had just moved to it) is delivered before a message published
// later to the node that binds the address now: the later one waits
// behind it until the claim ends, instead of overtaking it.
func TestOtherNodesClaimKeepsParkedOrder(t *testing.T) {
	url := natstest.Start(t).URL()
	o := natsbroker.Options{Prefix: newPrefix(), Replicas: 1, MemoryStorage: true, Timeout: time.Second, Logger: quiet()}
	open := func(id string, r broker.Receiver) *natsbroker.Broker {
		b, err := natsbroker.Connect(url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		must(t, b.Start(t.Context(), id, r))
		return b
	}
	old := &orderReceiver{got: map[string][]int{}}
	old.refuse.Store(true)
	oldNode := open("O", old)
	holder := &orderReceiver{got: map[string][]int{}}
	h := open("H", holder)
	p := open("P", &orderReceiver{got: map[string][]int{}})
	ctx := t.Context()
	addr := broker.Session("s0")
	must(t, p.PutSession(ctx, broker.SessionRecord{ID: "s0", Node: "H", Expires: time.Now().Add(time.Hour)}))
	if n, err := p.Publish(ctx, &broker.Message{Target: addr, Payload: []byte("s0/0")}); n != 1 || err != nil {
		t.Fatalf("parking message 0: Publish = %d, %v; want it kept (1)", n, err)
	}
	// The old node claims message 0, takes it nowhere, and stops: its
	// claim stands for three Timeouts.
	must(t, oldNode.Bind(ctx, addr))
	must(t, oldNode.Close())
	must(t, h.Bind(ctx, addr))
	if n, err := p.Publish(ctx, &broker.Message{Target: addr, Payload: []byte("s0/1")}); n != 1 || err != nil {
		t.Fatalf("publishing message 1: Publish = %d, %v", n, err)
	}
	for deadline := time.Now().Add(15 * time.Second); holder.missing([]int{2}) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages taken by Publish never arrived", holder.missing([]int{2}))
		}
	}
	if n, example := holder.overtaken(); n > 0 {
		t.Fatalf("%d messages arrived after a later one to the same session (%s)", n, example)
	}
}

// orderNodes starts nodes with the given ids on a NATS server of their
// own, each with an orderReceiver.
func orderNodes(t *testing.T, ids ...string) ([]*natsbroker.Broker, []*orderReceiver) {
	t.Helper()
	url := natstest.Start(t).URL()
	o := natsbroker.Options{Prefix: newPrefix(), Replicas: 1, MemoryStorage: true, Timeout: 2 * time.Second, Logger: quiet()}
	var bs []*natsbroker.Broker
	var rs []*orderReceiver
	for _, id := range ids {
		b, err := natsbroker.Connect(url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		r := &orderReceiver{got: map[string][]int{}}
		must(t, b.Start(t.Context(), id, r))
		bs, rs = append(bs, b), append(rs, r)
	}
	return bs, rs
}

// parkOrderNodes starts nodes H (holding session s1, bound) and P with
// orderNodes and returns them.
func parkOrderNodes(t *testing.T) (h, p *natsbroker.Broker, holder *orderReceiver) {
	t.Helper()
	bs, rs := orderNodes(t, "H", "P")
	h, p, holder = bs[0], bs[1], rs[0]
	must(t, h.PutSession(t.Context(), broker.SessionRecord{ID: "s1", Node: "H", Expires: time.Now().Add(time.Hour)}))
	must(t, h.Bind(t.Context(), broker.Session("s1")))
	return h, p, holder
}

// wantInOrder fails t unless holder got exactly messages 0..n-1 of s1, in
// order, each once.
func wantInOrder(t *testing.T, holder *orderReceiver, n int) {
	t.Helper()
	holder.mu.Lock()
	defer holder.mu.Unlock()
	got := holder.got["s1"]
	ok := len(got) == n
	for i := 0; ok && i < n; i++ {
		ok = got[i] == i
	}
	if !ok {
		t.Fatalf("s1 got messages %v; want 0..%d in order, each once", got, n-1)
	}
}

// A message that a node parked after the holder's bind had drained what
// was parked (its NATS server had not heard of the holder's subscription
// yet: no poke reached the holder) is delivered before the next message
// the same node publishes to the address, which reaches the holder: that
// one carries the park's mark, and the holder drains first.
func TestParkMarkKeepsOrderAcrossNodes(t *testing.T) {
	t.Parallel()
	_, p, holder := parkOrderNodes(t)
	ctx := t.Context()
	if n, err := natsbroker.ParkQuiet(p, ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/0")}); n != 1 || err != nil {
		t.Fatalf("parking message 0 = %d, %v; want it kept (1)", n, err)
	}
	for i := 1; i <= 3; i++ {
		if n, err := p.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/" + strconv.Itoa(i))}); n != 1 || err != nil {
			t.Fatalf("publishing message %d = %d, %v", i, n, err)
		}
	}
	wantInOrder(t, holder, 4)
}

// The same on the holding node itself: its own message parked for an
// address it has bound since is delivered before its next message there.
func TestParkMarkKeepsOrderOnTheHolder(t *testing.T) {
	t.Parallel()
	h, _, holder := parkOrderNodes(t)
	ctx := t.Context()
	if n, err := natsbroker.ParkQuiet(h, ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/0")}); n != 1 || err != nil {
		t.Fatalf("parking message 0 = %d, %v; want it kept (1)", n, err)
	}
	if n, err := h.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/1")}); n != 1 || err != nil {
		t.Fatalf("publishing message 1 = %d, %v", n, err)
	}
	wantInOrder(t, holder, 2)
}

// A message parked by a node whose own binding of the address is lame (the
// session just left it) reaches the node that bound the address since,
// even when that node's drain on binding ran before the message was
// parked: the poke goes out over NATS, not to the lame binding, and the
// new holder looks again after its bind.
func TestParkFromALameNodeArrives(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bs, rs := orderNodes(t, "O", "H")
	old, h, holder := bs[0], bs[1], rs[1]
	must(t, old.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "H", Expires: time.Now().Add(time.Hour)}))
	must(t, old.Bind(ctx, broker.Session("s1")))
	must(t, old.Unbind(ctx, broker.Session("s1"))) // lame for a while
	must(t, h.Bind(ctx, broker.Session("s1")))     // drains nothing yet
	if n, err := natsbroker.Park(old, ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/0")}); n != 1 || err != nil {
		t.Fatalf("parking = %d, %v; want it kept (1)", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); holder.missing([]int{0, 1}) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the parked message never reached the node holding the session")
		}
	}
}

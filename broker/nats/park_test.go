package nats_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// parkFor parks n messages for addr through p (nobody binds addr), behind
// a live record of session sid with client id cid.
func parkFor(t *testing.T, p *natsbroker.Broker, addr broker.Address, sid, cid string, n int) {
	t.Helper()
	ctx := t.Context()
	must(t, p.PutSession(ctx, broker.SessionRecord{ID: sid, ClientID: cid, Node: "gone", Expires: time.Now().Add(time.Minute)}))
	for i := range n {
		if got, err := p.Publish(ctx, &broker.Message{Target: addr, Payload: []byte(addr.Name + "/" + strconv.Itoa(i))}); got != 1 || err != nil {
			t.Fatalf("parking message %d for %s %q: Publish = %d, %v; want it kept (1)", i, addr.Kind, addr.Name, got, err)
		}
	}
}

// countAll returns how many times each of addr's n parked messages was
// delivered over rs.
func countAll(addr broker.Address, n int, rs ...*logReceiver) []int {
	counts := make([]int, n)
	for i := range n {
		for _, r := range rs {
			counts[i] += r.count(addr.Name + "/" + strconv.Itoa(i))
		}
	}
	return counts
}

// awaitCounts waits, within 10s, until each of addr's n parked messages
// was delivered at least once over rs.
func awaitCounts(t *testing.T, addr broker.Address, n int, rs ...*logReceiver) {
	t.Helper()
	awaitCountsWithin(t, 10*time.Second, addr, n, rs...)
}

// awaitCountsWithin is awaitCounts with a deadline of d.
func awaitCountsWithin(t *testing.T, d time.Duration, addr broker.Address, n int, rs ...*logReceiver) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		done := true
		for _, c := range countAll(addr, n, rs...) {
			done = done && c > 0
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked messages for %s %q delivered %v times; want each once", addr.Kind, addr.Name, countAll(addr, n, rs...))
		}
	}
}

// A drain whose caller gives up half-way (the stream that bound the session
// was reset, say) still delivers every parked message and purges them: the
// next node to bind the address finds nothing to deliver again.
func TestParkedCanceledDrain(t *testing.T) {
	bs, rs := moveNodes(t, "A", "B", "P")
	a, b, p, ra, rb := bs[0], bs[1], bs[2], rs[0], rs[1]
	addr := broker.Session("s1")
	const n = 5
	parkFor(t, p, addr, "s1", "", n)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ra.delivered = func(*broker.Message) { cancel() } // the binder goes away at the first delivery
	_ = a.Bind(ctx, addr)
	ra.delivered = nil
	must(t, a.Unbind(t.Context(), addr))
	must(t, b.Bind(t.Context(), addr))
	// A fence published after the move: once B has it, B has drained.
	if got, err := p.Publish(t.Context(), &broker.Message{Target: addr, Payload: []byte("fence")}); got != 1 || err != nil {
		t.Fatalf("Publish fence = %d, %v", got, err)
	}
	for deadline := time.Now().Add(10 * time.Second); rb.count("fence") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fence never reached B")
		}
	}
	for i, c := range countAll(addr, n, ra, rb) {
		if c != 1 {
			t.Errorf("parked message %d delivered %d times (A %d, B %d); want once", i, c, ra.count(addr.Name+"/"+strconv.Itoa(i)), rb.count(addr.Name+"/"+strconv.Itoa(i)))
		}
	}
}

// Two nodes binding a client id at the same moment (a takeover in
// progress) both look at its parked messages: each is delivered once, by
// one of them.
func TestParkedTwoNodesRace(t *testing.T) {
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	o := natsbroker.Options{Prefix: prefix, MemoryStorage: true, Timeout: time.Second, Logger: quiet()}
	a, ra := nodeWith(t, url, o, "A")
	b, rb := nodeWith(t, url, o, "B")
	p, _ := nodeWith(t, url, o, "P")
	const ids, n = 8, 6
	var addrs []broker.Address
	for i := range ids {
		id := "c" + strconv.Itoa(i)
		addrs = append(addrs, broker.Client(id))
		parkFor(t, p, addrs[i], "s-"+id, id, n)
	}
	var wg sync.WaitGroup
	for _, addr := range addrs {
		for _, nb := range []*natsbroker.Broker{a, b} {
			wg.Go(func() {
				if err := nb.Bind(t.Context(), addr); err != nil {
					t.Errorf("Bind: %v", err)
				}
			})
		}
	}
	wg.Wait()
	for _, addr := range addrs {
		awaitCounts(t, addr, n, ra, rb)
	}
	// A node that found the other's claim looks again when it ends (3
	// Timeouts after it was made): by then the messages are purged, and
	// it must deliver none of them.
	time.Sleep(3*o.Timeout + 500*time.Millisecond)
	for _, addr := range addrs {
		for i, c := range countAll(addr, n, ra, rb) {
			if c != 1 {
				t.Errorf("%s: parked message %d delivered %d times; want once", addr.Name, i, c)
			}
		}
	}
}

// A claim whose claimer died before purging (it stands, then ends) holds
// the other nodes off until it ends; then the next node delivers the
// messages.
func TestParkedClaimOfADeadNode(t *testing.T) {
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	o := natsbroker.Options{Prefix: prefix, MemoryStorage: true, Logger: quiet()}
	b, rb := nodeWith(t, url, o, "B")
	p, _ := nodeWith(t, url, o, "P")
	addr := broker.Session("s1")
	const n = 3
	parkFor(t, p, addr, "s1", "", n)
	// The dead node's claim on all of them, ending in a second.
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Second)
	claim := "dead-node 1000000 " + strconv.FormatInt(until.UnixNano(), 10)
	subj := prefix + ".seen.park_s_" + base64.RawURLEncoding.EncodeToString([]byte("s1"))
	if _, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: subj, Data: []byte(claim)}); err != nil {
		t.Fatal(err)
	}
	must(t, b.Bind(t.Context(), addr))
	if c := countAll(addr, n, rb); c[0] != 0 && time.Now().Before(until) {
		t.Fatalf("B delivered %v while the claim stood", c)
	}
	awaitCounts(t, addr, n, rb)
	for i, c := range countAll(addr, n, rb) {
		if c != 1 {
			t.Errorf("parked message %d delivered %d times; want once", i, c)
		}
	}
}

// A parked message the receiver takes nowhere (its log append failed, say)
// stays parked, with those after it, and the drain is tried again: each is
// delivered once, in order.
func TestParkedRefusedStaysParked(t *testing.T) {
	bs, rs := moveNodes(t, "A", "P")
	a, p, ra := bs[0], bs[1], rs[0]
	addr := broker.Session("s1")
	const n = 4
	parkFor(t, p, addr, "s1", "", n)
	var mu sync.Mutex
	refusals := 2
	var order []string
	ra.refuse = func(m *broker.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		if string(m.Payload) == "s1/1" && refusals > 0 {
			refusals--
			return true
		}
		order = append(order, string(m.Payload))
		return false
	}
	// The Bind succeeds (failing it would make a server drop the session
	// the first went to), and the rest follow.
	must(t, a.Bind(t.Context(), addr))
	awaitCounts(t, addr, n, ra)
	for i, c := range countAll(addr, n, ra) {
		if c != 1 {
			t.Errorf("parked message %d delivered %d times; want once", i, c)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"s1/0", "s1/1", "s1/2", "s1/3"}; !slices.Equal(order, want) {
		t.Errorf("delivered %v; want %v", order, want)
	}
}

// A node that claims parked messages and finds no session here for them
// (the session moved on) gives its claim up at once: the node that holds
// the session delivers them now, not once the claim would have ended
// (3 × Timeout later).
func TestParkedClaimerWithoutTheSessionLetsGo(t *testing.T) {
	bs, rs := moveNodes(t, "A", "B", "P")
	a, b, p, ra, rb := bs[0], bs[1], bs[2], rs[0], rs[1]
	addr := broker.Session("s1")
	const n = 3
	parkFor(t, p, addr, "s1", "", n)
	ra.refuse = func(*broker.Message) bool { return true } // no session on A
	must(t, a.Bind(t.Context(), addr))
	if c := countAll(addr, n, ra); c[0] != 0 {
		t.Fatalf("A took %v", c)
	}
	// Well before A's claim would end (3 × Timeout): as B binds, or as
	// A's poke reaches it.
	must(t, b.Bind(t.Context(), addr))
	awaitCountsWithin(t, natsbroker.DefaultTimeout, addr, n, rb)
	for i, c := range countAll(addr, n, rb) {
		if c != 1 {
			t.Errorf("parked message %d delivered %d times; want once", i, c)
		}
	}
}

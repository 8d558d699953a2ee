package brokertest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
)

// defaultSharedUnit is the window of RunShared's real-time checks without
// a RealTime option.
const defaultSharedUnit = 2 * time.Second

// evictHookDelay is how long a holder's Receiver.Evict lingers in the
// subtests that check that Broker.Evict waits for it: long enough for an
// Evict that does not wait to return first.
const evictHookDelay = 20 * time.Millisecond

// RunShared checks, in parallel subtests of t, the promises a shared broker
// keeps across nodes (see "Shared brokers" in package broker), with several
// nodes per subtest. It complements [Run], which checks one node.
//
// newCluster is called once by each subtest, with the subtest's t, and
// returns newNode: each call of newNode, with the same t, returns a new
// node of that cluster, not started, that is a Broker value of its own
// sharing routes, logs, records and Seen with every other node newNode
// returns, and with nothing else: each cluster is a fresh, empty name space
// (a fresh subject and stream prefix, say), isolated from the other
// subtests running in parallel. RunShared starts the nodes of a cluster
// with the names "n1", "n2", ... in the order it gets them, and closes them
// when the subtest ends; newCluster may register cleanups of its own with
// t.Cleanup.
//
// RunShared first gets one node (from a cluster of its own) and skips, with
// a message, unless its [broker.Broker.Shared] reports true: it does not
// apply to a broker that is not shared, such as the memory one.
//
// Nodes of a shared broker talk over a network, so RunShared runs in real
// time, outside synctest bubbles; [RealTime] sets the unit of its window
// checks (default 2s). What is asynchronous by nature (a Bind reaching the
// other nodes, a topic message reaching a remote node, kept messages
// reaching the node that binds their address) is awaited by polling, with
// a deadline of 10s; what the documentation says is done when a call
// returns is checked right after the call.
func RunShared(t *testing.T, newCluster func(t *testing.T) func(t *testing.T) broker.Broker, opts ...Option) {
	cfg := newConfig(t, opts)
	if !cfg.realTime {
		cfg.unit = defaultSharedUnit
	}
	newNode := newCluster(t)
	if newNode == nil {
		t.Fatal("newCluster returned nil")
	}
	first := newNode(t)
	if first == nil {
		t.Fatal("newNode returned nil")
	}
	shared := first.Shared()
	if err := first.Close(); err != nil && !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
	if !shared {
		t.Skip("brokertest: the broker is not shared (Shared reports false): RunShared does not apply")
	}
	groups := []struct {
		name  string
		tests []sharedTest
	}{
		{"Route", sharedRouteTests},
		{"Park", sharedParkTests},
		{"Evict", sharedEvictTests},
		{"State", sharedStateTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					newNode := newCluster(t)
					if newNode == nil {
						t.Fatal("newCluster returned nil")
					}
					tc.run(t, &cluster{newNode: newNode, config: cfg})
				})
			}
		})
	}
}

// sharedTest is one subtest of RunShared.
type sharedTest struct {
	name string
	run  func(t *testing.T, c *cluster)
}

var sharedRouteTests = []sharedTest{
	{"Session", func(t *testing.T, c *cluster) { testSharedPoint(t, c, broker.Session("s1")) }},
	{"Client", func(t *testing.T, c *cluster) { testSharedPoint(t, c, broker.Client("c1")) }},
	{"Topic", testSharedTopic},
	{"Local", testSharedLocal},
	{"Order", testSharedOrder},
}

var sharedParkTests = []sharedTest{
	{"Kept", testSharedParkKept},
	{"NotKept", testSharedParkNotKept},
}

var sharedEvictTests = []sharedTest{
	{"Session", testSharedEvictSession},
	{"Client", testSharedEvictClient},
	{"Holders", testSharedEvictHolders},
	{"Nobody", testSharedEvictNobody},
}

var sharedStateTests = []sharedTest{
	{"Logs", testSharedLogs},
	{"Records", testSharedRecords},
	{"Seen", testSharedSeen},
	{"SeenConcurrent", testSharedSeenConcurrent},
}

// cluster hands out the nodes of one subtest.
type cluster struct {
	newNode func(t *testing.T) broker.Broker
	config
	n int
}

// node is a started node of a cluster, with its Receiver.
type node struct {
	broker.Broker
	name string
	r    *recorder
}

// start returns the cluster's next node, started with a new recorder as
// its Receiver, that is closed when t ends.
func (c *cluster) start(t *testing.T) *node {
	t.Helper()
	c.n++
	name := fmt.Sprint("n", c.n)
	b := c.newNode(t)
	if b == nil {
		t.Fatal("newNode returned nil")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, broker.ErrClosed) {
			t.Errorf("Close of %s: %v", name, err)
		}
	})
	if !b.Shared() {
		t.Fatalf("node %s reports Shared() false, but the first node RunShared got reported true", name)
	}
	r := newRecorder()
	if err := b.Start(t.Context(), name, r); err != nil {
		t.Fatalf("Start of %s: %v", name, err)
	}
	return &node{Broker: b, name: name, r: r}
}

// probePrefix starts the payload of the messages awaitRoute publishes.
const probePrefix = "probe-"

func isProbe(m *broker.Message) bool { return strings.HasPrefix(string(m.Payload), probePrefix) }

// awaitRoute publishes probes to addr from node from until every node of to
// has been delivered one: a Bind may take a moment to reach the other
// nodes. For a session or client id, addr must have no live record, so
// that a probe that reaches nobody is dropped rather than kept. The probes
// stay in the recorders; payloads leaves them out.
func awaitRoute(t *testing.T, from *node, addr broker.Address, to ...*node) {
	t.Helper()
	reached := func() bool {
		for _, n := range to {
			if !slices.ContainsFunc(n.r.messages(), func(m *broker.Message) bool {
				return m.Target == addr && isProbe(m)
			}) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(defaultTimeout)
	for i := 0; ; i++ {
		if _, err := from.Publish(t.Context(), message(addr, fmt.Sprint(probePrefix, i))); err != nil {
			t.Fatalf("Publish of a probe to %v %q on %s: %v", addr.Kind, addr.Name, from.name, err)
		}
		if reached() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish to %v %q on %s has not reached every node that bound it after %v", addr.Kind, addr.Name, from.name, defaultTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// payloads returns the payloads of the messages of msgs to addr, in order,
// leaving out probes.
func payloads(msgs []*broker.Message, addr broker.Address) []string {
	var p []string
	for _, m := range msgs {
		if m.Target == addr && !isProbe(m) {
			p = append(p, string(m.Payload))
		}
	}
	return p
}

// wantPayloads fails t unless the messages to addr of msgs, probes left
// out, carry want.
func wantPayloads(t *testing.T, n *node, msgs []*broker.Message, addr broker.Address, want ...string) {
	t.Helper()
	if got := payloads(msgs, addr); !slices.Equal(got, want) {
		t.Errorf("%s was delivered %q for %v %q, want %q", n.name, got, addr.Kind, addr.Name, want)
	}
}

// noneDelivered fails t if any of nodes was delivered a message, probes
// included, since the last take.
func noneDelivered(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		for _, m := range n.r.take() {
			t.Errorf("%s, which bound nothing, was delivered %q for %v %q", n.name, m.Payload, m.Target.Kind, m.Target.Name)
		}
	}
}

// awaitPayload waits until n has been delivered a message to addr with
// payload p.
func awaitPayload(t *testing.T, n *node, addr broker.Address, p string) {
	t.Helper()
	eventually(t, fmt.Sprintf("the delivery of %q for %v %q to %s", p, addr.Kind, addr.Name, n.name), func() bool {
		return slices.Contains(payloads(n.r.messages(), addr), p)
	})
}

// testSharedPoint checks that a session or client id bound on one node is
// reached by Publish on another, which returns once the holder's Deliver
// returned (its count is what Deliver returned), with the message intact
// and delivered once, and no longer once unbound.
func testSharedPoint(t *testing.T, c *cluster, addr broker.Address) {
	a, b := c.start(t), c.start(t)
	bind(t, a, addr)
	awaitRoute(t, b, addr, a)
	a.r.take()

	want := message(addr, "m1")
	publish(t, b, want, 1)
	switch got := a.r.take(); {
	case len(got) != 1:
		t.Errorf("when Publish on %s returned, %s had been delivered %d messages, want 1", b.name, a.name, len(got))
	case !equalMessage(got[0], want):
		t.Errorf("%s was delivered %+v, want %+v", a.name, *got[0], *want)
	}
	publish(t, b, message(addr, "m2"), 1)
	wantPayloads(t, a, a.r.take(), addr, "m2")

	// Binds are counted: a second Bind and one Unbind leave it bound.
	bind(t, a, addr)
	unbind(t, a, addr)
	publish(t, b, message(addr, "m3"), 1)
	wantPayloads(t, a, a.r.take(), addr, "m3")
	noneDelivered(t, b)

	// An Unbind, too, may take a moment to reach the other nodes: until
	// it has, Publish may still reach a, but it must not fail.
	unbind(t, a, addr)
	eventually(t, fmt.Sprintf("Publish on %s to %v %q unbound on %s reaching no session", b.name, addr.Kind, addr.Name, a.name), func() bool {
		n, err := b.Publish(t.Context(), message(addr, "after unbind"))
		if err != nil {
			t.Fatalf("Publish on %s to %v %q just unbound on %s: %v; want a count (1 while the Unbind has not reached %[1]s, then 0), not an error", b.name, addr.Kind, addr.Name, a.name, err)
		}
		return n == 0
	})
	noneDelivered(t, b)
}

// testSharedTopic checks topic fan-out: a message published on one node
// reaches every other node that bound the topic, once each, and the count
// covers the publishing node's own sessions only.
func testSharedTopic(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	addr := broker.Topic("t")
	bind(t, a, addr)
	bind(t, d, addr)
	awaitRoute(t, b, addr, a, d)

	publish(t, b, message(addr, "m1"), 0) // b has no session of its own
	noneDelivered(t, b)

	// With sessions of its own, b counts them only: Deliver on b returns 2,
	// on the others 5.
	a.r.setReach(5)
	d.r.setReach(5)
	bind(t, b, addr)
	b.r.setReach(2)
	publish(t, b, message(addr, "m2"), 2)
	wantPayloads(t, b, b.r.take(), addr, "m2")

	// Messages from one publisher arrive in order: once the fence has
	// arrived, so has everything before it, and a duplicate would show.
	publish(t, b, message(addr, "fence"), 2)
	wantPayloads(t, b, b.r.take(), addr, "fence")
	for _, n := range []*node{a, d} {
		awaitPayload(t, n, addr, "fence")
		wantPayloads(t, n, n.r.take(), addr, "m1", "m2", "fence")
	}
}

// testSharedLocal checks that a node publishing to an address it bound
// delivers the message itself, before Publish returns, exactly once: the
// broker does not deliver it again when it comes back from the cluster.
func testSharedLocal(t *testing.T, c *cluster) {
	a, b := c.start(t), c.start(t)
	for _, addr := range []broker.Address{broker.Topic("x"), broker.Session("x"), broker.Client("x")} {
		bind(t, a, addr)
		// Once b reaches a, a message of a's that went through the
		// cluster would come back to a as well.
		awaitRoute(t, b, addr, a)
		a.r.take()
		publish(t, a, message(addr, "local"), 1)
		wantPayloads(t, a, a.r.messages(), addr, "local")

		// b's fence is published after a's message: an echo of a's
		// would arrive before it.
		fenceReach := 1
		if addr.Kind == broker.KindTopic {
			fenceReach = 0
		}
		publish(t, b, message(addr, "fence"), fenceReach)
		awaitPayload(t, a, addr, "fence")
		wantPayloads(t, a, a.r.take(), addr, "local", "fence")
		noneDelivered(t, b)
	}
}

// testSharedOrder checks that messages from one publisher to one address
// arrive in the order they were published, one publisher alone and two at
// once, to a client id and to a topic.
func testSharedOrder(t *testing.T, c *cluster) {
	const n = 200
	a, b, d := c.start(t), c.start(t), c.start(t)
	client, topic := broker.Client("c"), broker.Topic("t")
	bind(t, a, client)
	bind(t, a, topic)
	for _, from := range []*node{b, d} {
		awaitRoute(t, from, client, a)
		awaitRoute(t, from, topic, a)
	}
	a.r.take()
	payload := func(from *node, i int) string { return fmt.Sprintf("%s-%03d", from.name, i) }
	sequence := func(from *node) []string {
		var want []string
		for i := range n {
			want = append(want, payload(from, i))
		}
		return want
	}

	for i := range n {
		publish(t, b, message(client, payload(b, i)), 1)
	}
	wantPayloads(t, a, a.r.take(), client, sequence(b)...)

	var wg sync.WaitGroup
	for _, from := range []*node{b, d} {
		for _, addr := range []broker.Address{client, topic} {
			want := 1
			if addr == topic {
				want = 0
			}
			wg.Go(func() {
				for i := range n {
					got, err := from.Publish(t.Context(), message(addr, payload(from, i)))
					if err != nil || got != want {
						t.Errorf("Publish to %v %q on %s = %d, %v; want %d, nil", addr.Kind, addr.Name, from.name, got, err, want)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	eventually(t, fmt.Sprintf("the delivery to %s of the %d topic messages published on %s and %s", a.name, 2*n, b.name, d.name), func() bool {
		return len(payloads(a.r.messages(), topic)) >= 2*n
	})
	msgs := a.r.take()
	for _, addr := range []broker.Address{client, topic} {
		for _, from := range []*node{b, d} {
			var got []string
			for _, p := range payloads(msgs, addr) {
				if strings.HasPrefix(p, from.name+"-") {
					got = append(got, p)
				}
			}
			if want := sequence(from); !slices.Equal(got, want) {
				t.Errorf("%s was delivered, for %v %q from %s, %d messages %q; want the %d published, in order", a.name, addr.Kind, addr.Name, from.name, len(got), got, n)
			}
		}
	}
}

// testSharedParkKept checks that messages to a session, or to the client id
// of a live record, that reach no node are kept, counted as reached, and
// delivered in order to the next node that binds their address, before
// messages published after its Bind.
func testSharedParkKept(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	now := time.Now()
	put(t, a, broker.SessionRecord{
		ID:        "s1",
		ClientID:  "c1",
		Principal: "p",
		Node:      a.name,
		Created:   now,
		Expires:   now.Add(time.Hour),
	})
	addrs := []broker.Address{broker.Client("c1"), broker.Session("s1")}
	for i := range 3 {
		for _, addr := range addrs {
			publish(t, b, message(addr, fmt.Sprint("kept-", i)), 1)
		}
	}
	noneDelivered(t, a, b, d)

	for _, addr := range addrs {
		bind(t, d, addr)
	}
	// Published after d's Bind returned: reached at once, or kept for d if
	// the Bind has not reached b yet. Either way d gets it after the kept
	// messages.
	for _, addr := range addrs {
		publish(t, b, message(addr, "after"), 1)
	}
	for _, addr := range addrs {
		awaitPayload(t, d, addr, "after")
	}
	msgs := d.r.take()
	for _, addr := range addrs {
		wantPayloads(t, d, msgs, addr, "kept-0", "kept-1", "kept-2", "after")
	}
	noneDelivered(t, a, b)
}

// testSharedParkNotKept checks that messages to an address that reaches no
// node and has no live record (none, a closed one or an expired one) are
// counted 0 and not kept.
func testSharedParkNotKept(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	now := time.Now()
	put(t, a, broker.SessionRecord{ID: "closed", ClientID: "c-closed", Closed: true, Expires: now.Add(time.Hour)})
	put(t, a, broker.SessionRecord{ID: "expired", ClientID: "c-expired", Expires: now.Add(-time.Minute)})
	addrs := []broker.Address{
		broker.Session("nobody"), broker.Client("nobody"),
		broker.Session("closed"), broker.Client("c-closed"),
		broker.Session("expired"), broker.Client("c-expired"),
	}
	for _, addr := range addrs {
		publish(t, b, message(addr, "lost"), 0)
	}
	noneDelivered(t, a, b, d)
	for _, addr := range addrs {
		bind(t, d, addr)
	}
	// Kept messages would be delivered before the probe that reached d.
	for _, addr := range addrs {
		awaitRoute(t, b, addr, d)
	}
	msgs := d.r.take()
	for _, addr := range addrs {
		wantPayloads(t, d, msgs, addr)
	}
	noneDelivered(t, a, b)
}

// evictUntil calls Evict(e) on from until holder's Receiver has been given
// an eviction, and returns what that last Evict returned: until holder's
// Bind has reached from, Evict finds no holder and returns nil. Holder's
// Receiver.Evict calls act, if not nil. evictUntil fails t if holder's
// Receiver.Evict runs while no Evict runs on from, or is still running when
// Evict returns: Evict must wait for the holder to act.
func evictUntil(t *testing.T, from, holder *node, e broker.Eviction, act func()) error {
	t.Helper()
	var (
		running atomic.Int64 // the number of the Evict call running, 0 between calls
		mu      sync.Mutex
		active  int  // hook calls running
		done    bool // evictUntil returned: hook calls check nothing
	)
	holder.r.setEvictHook(func(got broker.Eviction) {
		call := running.Load()
		mu.Lock()
		if done {
			mu.Unlock()
			return
		}
		active++
		mu.Unlock()
		defer func() {
			mu.Lock()
			active--
			mu.Unlock()
		}()
		if act != nil {
			act()
		}
		time.Sleep(evictHookDelay)
		switch {
		case call == 0:
			t.Errorf("%s's Receiver.Evict(%+v) was called after Evict on %s had returned: Evict must wait for the holder", holder.name, got, from.name)
		case running.Load() != call:
			t.Errorf("%s's Receiver.Evict(%+v) was still running when Evict on %s returned: Evict must wait for the holder", holder.name, got, from.name)
		}
	})
	defer func() {
		holder.r.setEvictHook(nil)
		mu.Lock()
		done = true
		mu.Unlock()
		// Let the checks of hook calls still running report while t runs.
		for deadline := time.Now().Add(defaultTimeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			n := active
			mu.Unlock()
			if n == 0 {
				break
			}
		}
	}()
	before := holder.r.evictionCount()
	deadline := time.Now().Add(defaultTimeout)
	for call := int64(1); ; call++ {
		running.Store(call)
		var err error
		within(t, fmt.Sprintf("Evict(%+v) on %s, whose holder's Receiver.Evict may call its Broker back,", e, from.name), func() {
			err = from.Evict(t.Context(), e)
		})
		running.Store(0)
		if holder.r.evictionCount() > before {
			return err
		}
		if err != nil {
			t.Fatalf("Evict(%+v) on %s returned %v without reaching %s", e, from.name, err, holder.name)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Evict(%+v) on %s has not reached %s after %v", e, from.name, holder.name, defaultTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// wantEvictions fails t unless n was given one eviction or more since the
// last call, all equal to want.
func wantEvictions(t *testing.T, n *node, want broker.Eviction) {
	t.Helper()
	got := n.r.takeEvictions()
	if len(got) == 0 {
		t.Errorf("%s was given no eviction, want %+v", n.name, want)
	}
	for _, e := range got {
		if e != want {
			t.Errorf("%s was given eviction %+v, want %+v", n.name, e, want)
		}
	}
}

// noEvictions fails t if any of nodes was given an eviction.
func noEvictions(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		for _, e := range n.r.takeEvictions() {
			t.Errorf("%s was given eviction %+v, want none", n.name, e)
		}
	}
}

// testSharedEvictSession checks that an eviction of a session reaches the
// node that bound the session, intact, before Evict returns, and no other
// node.
func testSharedEvictSession(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	bind(t, a, broker.Session("s1"))
	bind(t, d, broker.Session("s2"))
	bind(t, d, broker.Client("s1"))
	e := broker.Eviction{Session: "s1", Node: b.name}
	if err := evictUntil(t, b, a, e, nil); err != nil {
		t.Errorf("Evict(%+v): %v", e, err)
	}
	wantEvictions(t, a, e)
	noEvictions(t, b, d)
}

// testSharedEvictClient checks that an eviction of a client id reaches the
// node that bound the client id, before Evict returns, and not the
// evicting node even if it bound it too; and that a holder's
// ErrForeignClient comes back from Evict.
func testSharedEvictClient(t *testing.T, c *cluster) {
	a, b := c.start(t), c.start(t)
	addr := broker.Client("c1")
	bind(t, a, addr)
	bind(t, b, addr) // the new session, on b
	e := broker.Eviction{Client: "c1", Principal: "p", By: "x", Node: b.name}
	if err := evictUntil(t, b, a, e, nil); err != nil {
		t.Errorf("Evict(%+v): %v", e, err)
	}
	wantEvictions(t, a, e)
	noEvictions(t, b)

	a.r.setEvictErr(broker.ErrForeignClient)
	if err := evictUntil(t, b, a, e, nil); !errors.Is(err, broker.ErrForeignClient) {
		t.Errorf("Evict(%+v) refused by %s returned %v, want ErrForeignClient", e, a.name, err)
	}
	wantEvictions(t, a, e)
	noEvictions(t, b)
}

// testSharedEvictHolders checks that an eviction of a client id reaches
// every node that bound it.
func testSharedEvictHolders(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	addr := broker.Client("c1")
	bind(t, a, addr)
	bind(t, d, addr)
	e := broker.Eviction{Client: "c1", Principal: "p", By: "x", Node: b.name}
	eventually(t, fmt.Sprintf("Evict(%+v) on %s reaching %s and %s", e, b.name, a.name, d.name), func() bool {
		if err := b.Evict(t.Context(), e); err != nil {
			t.Fatalf("Evict(%+v): %v", e, err)
		}
		return a.r.evictionCount() > 0 && d.r.evictionCount() > 0
	})
	wantEvictions(t, a, e)
	wantEvictions(t, d, e)
	noEvictions(t, b)
}

// testSharedEvictNobody checks that Evict of a session or client id that no
// node bound returns nil quickly, and reaches no node, not even one that
// bound an address of another kind with the same name.
func testSharedEvictNobody(t *testing.T, c *cluster) {
	a, b := c.start(t), c.start(t)
	for _, addr := range []broker.Address{broker.Client("s1"), broker.Topic("s1"), broker.Session("c1"), broker.Topic("c1")} {
		bind(t, a, addr)
		awaitRoute(t, b, addr, a)
	}
	for _, e := range []broker.Eviction{
		{Session: "s1", Node: b.name},
		{Client: "c1", Principal: "p", By: "x", Node: b.name},
		{Session: "nowhere", Node: b.name},
		{Client: "nowhere", Principal: "p", By: "x", Node: b.name},
	} {
		quickly(t, fmt.Sprintf("Evict(%+v) that no node holds", e), func() {
			if err := b.Evict(t.Context(), e); err != nil {
				t.Errorf("Evict(%+v) that no node holds: %v", e, err)
			}
		})
	}
	noEvictions(t, a, b)
}

// takeOver moves session id from node from to node to as a server resuming
// it on to does: to evicts it; from releases it, in its Receiver.Evict,
// by unbinding it (a Receiver may call its Broker back); to binds it.
func takeOver(t *testing.T, to, from *node, id string) {
	t.Helper()
	e := broker.Eviction{Session: id, Node: to.name}
	release := func() {
		if err := from.Unbind(t.Context(), broker.Session(id)); err != nil {
			t.Errorf("Unbind of session %q on %s from its Receiver.Evict: %v", id, from.name, err)
		}
	}
	if err := evictUntil(t, to, from, e, release); err != nil {
		t.Fatalf("Evict(%+v): %v", e, err)
	}
	wantEvictions(t, from, e)
	bind(t, to, broker.Session(id))
}

// testSharedLogs checks that a session's log is the same on every node as
// the session moves between nodes: once Evict took it from its writer, the
// new holder, and every other node, reads what the writer appended,
// trimmed or deleted, and a former writer that takes it back reads what
// was written since. Nothing is read on another node while the writer
// still holds the session: a writer may keep its writes to itself until
// it releases the session.
func testSharedLogs(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	const id = "s1"
	bind(t, a, broker.Session(id))
	la := a.Log(id)
	for seq := uint64(1); seq <= 5; seq++ {
		appendSeq(t, la, seq, 10, broker.Appended{Len: int(seq)})
	}
	trim(t, la, 2)
	wantSeqs(t, la, 3, 4, 5)
	wantSeqs(t, d.Log("other"))

	// b resumes the session: it reads what a appended and trimmed, and
	// appends after it.
	takeOver(t, b, a, id)
	lb := b.Log(id)
	wantSeqs(t, lb, 3, 4, 5)
	wantSeqs(t, d.Log(id), 3, 4, 5)
	if got, err := lb.Append(t.Context(), entry(5), 10); err == nil {
		t.Errorf("Append(seq 5) on %s after %s appended seq 5 = %+v, nil; want an error", b.name, a.name, got)
	}
	appendSeq(t, lb, 6, 10, broker.Appended{Len: 4})
	trim(t, lb, 4)
	wantSeqs(t, lb, 5, 6)

	// a takes it back: it reads what b wrote, not what it wrote itself.
	takeOver(t, a, b, id)
	la = a.Log(id)
	wantSeqs(t, la, 5, 6)
	appendSeq(t, la, 7, 3, broker.Appended{Len: 3})
	appendSeq(t, la, 8, 3, broker.Appended{Dropped: 1, Len: 3})

	// b takes it again and deletes the log.
	takeOver(t, b, a, id)
	lb = b.Log(id)
	wantSeqs(t, lb, 6, 7, 8)
	wantSeqs(t, d.Log(id), 6, 7, 8)
	if err := lb.Delete(t.Context()); err != nil {
		t.Fatalf("Delete on %s: %v", b.name, err)
	}
	wantSeqs(t, lb)

	// a, which wrote the log before, reads it deleted; a new log starts
	// with any seq.
	takeOver(t, a, b, id)
	wantSeqs(t, a.Log(id))
	wantSeqs(t, d.Log(id))
	appendSeq(t, a.Log(id), 1, 10, broker.Appended{Len: 1})
	wantSeqs(t, a.Log(id), 1)
}

// testSharedRecords checks that a record put, replaced or deleted on one
// node is read so on the others as soon as the call returned.
func testSharedRecords(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	get(t, b, "s1", nil)
	v1 := record("s1", "1")
	put(t, a, v1)
	get(t, b, "s1", &v1)
	get(t, d, "s1", &v1)
	v2 := record("s1", "2")
	v2.Topics, v2.Metadata = nil, nil
	put(t, b, v2)
	get(t, a, "s1", &v2)
	get(t, d, "s1", &v2)
	deleteSession(t, d, "s1")
	get(t, a, "s1", nil)
	get(t, b, "s1", nil)
}

// testSharedSeen checks that a key recorded by Seen on one node is seen on
// the others, in its scope only, until forgotten on any node or until the
// window of the recording call passed, which repeats on other nodes do not
// extend.
func testSharedSeen(t *testing.T, c *cluster) {
	a, b, d := c.start(t), c.start(t), c.start(t)
	seen(t, a, "s", "k", time.Hour, false)
	recorded(t, b, "s", "k", true)
	seen(t, b, "s", "k", time.Hour, true)
	seen(t, d, "s", "k", time.Hour, true)
	recorded(t, d, "other", "k", false)
	seen(t, b, "other", "k", time.Hour, false)
	if err := b.Forget(t.Context(), "s", "k"); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	seen(t, d, "s", "k", time.Hour, false)
	seen(t, a, "s", "k", time.Hour, true)
	seen(t, b, "other", "k", time.Hour, true)

	// As testSeenWindow, with each call on another node.
	w := c.unit
	seen(t, a, "s", "w", w, false)
	time.Sleep(w / 2)
	seen(t, b, "s", "w", w, true)
	time.Sleep(3 * w / 4) // 1.25w after recording; b's repeat would have extended it to 1.5w
	seen(t, d, "s", "w", w, false)
	seen(t, a, "s", "w", w, true)
}

// testSharedSeenConcurrent checks that of concurrent Seen calls for one key
// on several nodes, exactly one records it.
func testSharedSeenConcurrent(t *testing.T, c *cluster) {
	const keys = 50
	nodes := []*node{c.start(t), c.start(t), c.start(t)}
	var (
		wg    sync.WaitGroup
		fresh atomic.Int64
	)
	for _, n := range nodes {
		for range 2 {
			wg.Go(func() {
				for i := range keys {
					dup, err := n.Seen(t.Context(), "shared", fmt.Sprint(i), time.Hour)
					if err != nil {
						t.Errorf("Seen on %s: %v", n.name, err)
						return
					}
					if !dup {
						fresh.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if n := fresh.Load(); n != keys {
		t.Errorf("%d concurrent Seen calls on %d nodes for each of %d keys reported %d new keys, want %d", 2*len(nodes), len(nodes), keys, n, keys)
	}
}

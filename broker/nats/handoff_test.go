package nats_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// cutDialer dials NATS for one node and cuts it off on demand: void makes
// its connections swallow what the node writes (a publish then goes
// nowhere), drop closes them, and while down it dials nothing.
type cutDialer struct {
	mu        sync.Mutex
	down      bool
	conns     []*cutConn
	swallowed []byte        // what voided connections were given
	wrote     chan struct{} // a voided connection was given something
}

type cutConn struct {
	net.Conn
	d    *cutDialer
	void atomic.Bool
}

func (c *cutConn) Write(p []byte) (int, error) {
	if c.void.Load() {
		c.d.mu.Lock()
		c.d.swallowed = append(c.d.swallowed, p...)
		c.d.mu.Unlock()
		select {
		case c.d.wrote <- struct{}{}:
		default:
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// awaitSwallowed waits, within 10s, until the node wrote s into the void:
// then a publish of it is gone for good, not buffered for a reconnect.
func (d *cutDialer) awaitSwallowed(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		done := bytes.Contains(d.swallowed, []byte(s))
		d.mu.Unlock()
		if done {
			return
		}
		select {
		case <-d.wrote:
		case <-deadline:
			t.Fatalf("the node never wrote %q", s)
		}
	}
}

func (d *cutDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, errors.New("cut off by the test")
	}
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	cc := &cutConn{Conn: c, d: d}
	d.conns = append(d.conns, cc)
	return cc, nil
}

// void makes the open connections swallow writes.
func (d *cutDialer) void() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.void.Store(true)
	}
}

// drop closes the open connections; while down, no new one is dialed.
func (d *cutDialer) drop(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}

func (d *cutDialer) heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = false
}

// sessReceiver plays a server: it holds sessions, each with its next
// outbound seq, and appends what it is given to the session's log, as
// Session.enqueue does. Evict releases the session as a server does:
// it forgets it and unbinds it.
type sessReceiver struct {
	b      *natsbroker.Broker
	mu     sync.Mutex
	seq    map[string]uint64 // held sessions: the last seq assigned
	got    []string          // payloads, in delivery order
	arrive chan struct{}
	// before, if set, runs in a delivery before the append.
	before func(m *broker.Message)
}

var _ broker.SessionReceiver = (*sessReceiver)(nil)

func newSessReceiver() *sessReceiver {
	return &sessReceiver{seq: map[string]uint64{}, arrive: make(chan struct{}, 1)}
}

func (r *sessReceiver) hold(id string, last uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq[id] = last
}

func (r *sessReceiver) Deliver(m *broker.Message) (int, error) {
	if m.Target.Kind != broker.KindSession {
		return 0, nil
	}
	return r.DeliverSession(m.Target.Name, m)
}

func (r *sessReceiver) DeliverSession(id string, m *broker.Message) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.seq[id]
	if !ok {
		return 0, nil
	}
	if r.before != nil {
		r.before(m)
	}
	if _, err := r.b.Log(id).Append(context.Background(), broker.Entry{Seq: last + 1, Message: m}, 1000); err != nil {
		return 0, nil
	}
	r.seq[id] = last + 1
	r.got = append(r.got, string(m.Payload))
	select {
	case r.arrive <- struct{}{}:
	default:
	}
	return 1, nil
}

func (r *sessReceiver) Evict(e broker.Eviction) error {
	r.mu.Lock()
	_, held := r.seq[e.Session]
	delete(r.seq, e.Session)
	r.mu.Unlock()
	if !held {
		return nil
	}
	return r.b.Unbind(context.Background(), broker.Session(e.Session))
}

// await waits, within 30s, until payload p has arrived.
func (r *sessReceiver) await(t *testing.T, p string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		got := slices.Clone(r.got)
		r.mu.Unlock()
		if slices.Contains(got, p) {
			return
		}
		select {
		case <-r.arrive:
		case <-deadline:
			t.Fatalf("%s never arrived; got %v", p, got)
		}
	}
}

// handoffNode starts broker node id on url, reaching NATS through d when
// it is not nil, with a sessReceiver.
func handoffNode(t *testing.T, url, prefix, id string, d *cutDialer) (*natsbroker.Broker, *sessReceiver) {
	t.Helper()
	o := natsbroker.Options{Prefix: prefix, MemoryStorage: true, Timeout: 2 * time.Second, Heartbeat: 500 * time.Millisecond, Logger: quiet()}
	opts := []nats.Option{nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(0, 0)}
	if d != nil {
		opts = append(opts, nats.SetCustomDialer(d))
	}
	b, err := natsbroker.Connect(url, o, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r := newSessReceiver()
	r.b = b
	must(t, b.Start(t.Context(), id, r))
	t.Cleanup(func() { _ = b.Close() })
	return b, r
}

// readLog returns the payloads of session id's log by seq, as node b reads
// it, and fails unless its seqs are 1..n without a hole.
func readLog(t *testing.T, b *natsbroker.Broker, id string) []string {
	t.Helper()
	var got []string
	var seqs []uint64
	must(t, b.Log(id).Read(t.Context(), 0, func(e broker.Entry) bool {
		seqs = append(seqs, e.Seq)
		got = append(got, string(e.Message.Payload))
		return true
	}))
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("the log of %s has seqs %v, want 1..%d", id, seqs, len(seqs))
		}
	}
	return got
}

func publishTo(t *testing.T, b *natsbroker.Broker, id, payload string) {
	t.Helper()
	if n, err := b.Publish(t.Context(), &broker.Message{Target: broker.Session(id), Payload: []byte(payload)}); n != 1 || err != nil {
		t.Fatalf("Publish %s = %d, %v", payload, n, err)
	}
}

// A node cut off from NATS with a message queued to a session but not
// stored (its append failed), whose session meanwhile moved to another
// node that read the log without it, hands the message on to the session
// once it is back, instead of writing it into the log the new holder now
// writes: the new holder gets it behind what it has, its own appends go
// on, and its log has no hole. The session's record still names the old
// node when it is back (the new holder stores it only once the session is
// attached there): the note the new holder's eviction left tells the old
// node that the session moved.
func TestMovedSessionHandsOnWhatItCouldNotStore(t *testing.T) {
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	d := &cutDialer{wrote: make(chan struct{}, 1)}
	a, ra := handoffNode(t, url, prefix, "A", d)
	b, rb := handoffNode(t, url, prefix, "B", nil)
	c, _ := handoffNode(t, url, prefix, "C", nil)
	health := watchHealth(a)
	ctx := t.Context()
	must(t, a.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A"}))
	ra.hold("s1", 0)
	must(t, a.Bind(ctx, broker.Session("s1")))
	for _, p := range []string{"m1", "m2", "m3"} {
		publishTo(t, a, "s1", p)
	}

	// m4 is queued on A, its append swallowed; then A is cut off.
	d.void()
	if n, err := ra.Deliver(&broker.Message{Target: broker.Session("s1"), Payload: []byte("m4")}); n != 1 || err != nil {
		t.Fatalf("Deliver m4 on A = %d, %v", n, err)
	}
	d.awaitSwallowed(t, "m4")
	d.drop(true)
	health.await(t, 0, "NATS unreachable", func(err error) bool { return err != nil })
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Log("s1").(broker.Syncer).Sync(sctx); err == nil {
		t.Fatal("A stored m4 while cut off")
	}

	// B resumes the session, as a server adopts it: evict (no holder
	// answers), read the log, bind; its record is not stored yet.
	for deadline := time.Now().Add(10 * time.Second); ; {
		// Until NATS sees that A's connection is gone, a request may
		// still reach it, and Evict fails, retryably, as A does not
		// answer: a server's client resumes again.
		err := b.Evict(ctx, broker.Eviction{Session: "s1", Node: "B"})
		if err == nil {
			break
		}
		if !errors.Is(err, broker.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if got := readLog(t, b, "s1"); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("B read the log %v, want m1..m3", got)
	}
	rb.hold("s1", 3)
	must(t, b.Bind(ctx, broker.Session("s1")))
	publishTo(t, b, "s1", "m5")

	d.heal()
	rb.await(t, "m4")
	publishTo(t, b, "s1", "m6")
	must(t, b.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "B"}))

	want := []string{"m1", "m2", "m3", "m5", "m4", "m6"}
	if got := readLog(t, b, "s1"); !slices.Equal(got, want) {
		t.Errorf("B's log = %v, want %v", got, want)
	}
	if got := readLog(t, c, "s1"); !slices.Equal(got, want) {
		t.Errorf("the log in JetStream = %v, want %v", got, want)
	}
	ra.mu.Lock()
	_, held := ra.seq["s1"]
	ra.mu.Unlock()
	if held {
		t.Error("A did not release the session that moved")
	}
	if n := counter(t, a, "tether_nats_broker_lost_total"); n != 0 {
		t.Errorf("A reported %v messages lost", n)
	}
}

// A holder's first append after it took a session over does not wedge on
// entries that a former holder wrote into the log after the new holder
// read it (a node of an earlier version, back from a NATS outage): they
// leave the log and reach the session again as new messages, behind the
// holder's own. (An entry the holder read, at or above the seq it
// appends, still fails the append: the conformance suite checks it.)
func TestAppendAfterStaleEntries(t *testing.T) {
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	a, ra := handoffNode(t, url, prefix, "A", nil)
	b, rb := handoffNode(t, url, prefix, "B", nil)
	c, _ := handoffNode(t, url, prefix, "C", nil)
	ctx := t.Context()
	must(t, a.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A"}))
	ra.hold("s1", 0)
	must(t, a.Bind(ctx, broker.Session("s1")))
	publishTo(t, a, "s1", "m1")
	publishTo(t, a, "s1", "m2")
	must(t, a.Unbind(ctx, broker.Session("s1")))

	// B takes the session over and reads m1, m2; then C, a stale holder,
	// writes seqs 3 and 4.
	if got := readLog(t, b, "s1"); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("B read the log %v, want m1, m2", got)
	}
	rb.hold("s1", 2)
	must(t, b.Bind(ctx, broker.Session("s1")))
	for i, p := range []string{"stale3", "stale4"} {
		e := broker.Entry{Seq: uint64(3 + i), Message: &broker.Message{Target: broker.Topic("news"), Payload: []byte(p)}}
		if _, err := c.Log("s1").Append(ctx, e, 1000); err != nil {
			t.Fatal(err)
		}
	}
	must(t, c.Log("s1").(broker.Syncer).Sync(ctx))

	publishTo(t, b, "s1", "m3")
	rb.await(t, "stale4")
	publishTo(t, b, "s1", "m4")
	want := []string{"m1", "m2", "m3", "stale3", "stale4", "m4"}
	if got := readLog(t, b, "s1"); !slices.Equal(got, want) {
		t.Errorf("B's log = %v, want %v", got, want)
	}
	if got := readLog(t, natsNode(t, url, prefix, "D"), "s1"); !slices.Equal(got, want) {
		t.Errorf("the log in JetStream = %v, want %v", got, want)
	}
}

// natsNode starts a broker node that holds nothing.
func natsNode(t *testing.T, url, prefix, id string) *natsbroker.Broker {
	t.Helper()
	b, _ := handoffNode(t, url, prefix, id, nil)
	return b
}

// A parked message that a drain delivered but whose log append failed
// (NATS dropped the node's connection meanwhile) stays parked until the
// session's log holds it: at no time is it neither parked nor stored.
func TestDrainKeepsParkedWhatItCouldNotStore(t *testing.T) {
	srv := natstest.Start(t)
	prefix := newPrefix()
	d := &cutDialer{wrote: make(chan struct{}, 1)}
	a, ra := handoffNode(t, srv.URL(), prefix, "A", d)
	p := natsNode(t, srv.URL(), prefix, "P")
	c := natsNode(t, srv.URL(), prefix, "C")
	ctx := t.Context()
	must(t, a.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A", Expires: time.Now().Add(time.Hour)}))
	// Parked while no node holds the session.
	publishTo(t, p, "s1", "p1")

	// A binds the session and drains p1: its append is swallowed and
	// the connection dropped, once.
	var once sync.Once
	ra.before = func(*broker.Message) {
		once.Do(func() {
			d.void()
			go func() {
				d.awaitSwallowed(t, "p1")
				d.drop(false)
			}()
		})
	}
	ra.hold("s1", 0)
	if err := a.Bind(ctx, broker.Session("s1")); err != nil {
		t.Fatal(err)
	}
	ra.await(t, "p1")

	js, err := jetstream.New(natstest.Connect(t, srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := js.Stream(ctx, strings.ToUpper(prefix)+"_LOG")
	if err != nil {
		t.Fatal(err)
	}
	parkSubj := prefix + ".park.s." + base64.RawURLEncoding.EncodeToString([]byte("s1"))
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := ls.GetLastMsgForSubject(ctx, parkSubj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // purged: the log must hold p1 now
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("p1 stayed parked for 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling an observable condition, bounded above
	}
	if got := readLog(t, c, "s1"); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("p1 left the park, and the log in JetStream holds %v", got)
	}
	if got := fmt.Sprint(ra.got); got != "[p1]" {
		t.Errorf("A delivered %s, want p1 once", got)
	}
}

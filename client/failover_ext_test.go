package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// handled is a server Handler that routes like server.Router and records,
// in the order the node handled them, the payloads one client sent: what
// that node accepted, whoever subscribed.
type handled struct {
	server.Router
	from string

	mu  sync.Mutex
	got []string
}

func (h *handled) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	if s.ClientID() == h.from {
		h.mu.Lock()
		h.got = append(h.got, string(m.Payload))
		h.mu.Unlock()
	}
	return h.Router.OnMessage(ctx, s, m)
}

func (h *handled) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// numbered returns the index of a payload "m<i>", or -1.
func numbered(p string) int {
	var i int
	if _, err := fmt.Sscanf(p, "m%d", &i); err != nil || fmt.Sprint("m", i) != p {
		return -1
	}
	return i
}

// TestDrainMovesToTheOtherBackend drains the backend a session uses; the
// session moves to the other one, an independent node with its own
// in-memory broker.
//
// What is promised with in-memory brokers (nodes share nothing):
//   - A message whose SendWait returned nil was acked by the drained node:
//     that node handled it (routed it to its own subscribers) and the
//     client never sends it again, to any node.
//   - Drain acks everything the node read before its GoAway; a message the
//     client wrote after that, or had not written yet, stays in the
//     client's buffer and is re-sent to the new node, where it reaches that
//     node's subscribers. Every message reaches one node or the other, in
//     order on each.
//   - The session itself cannot move: the new node does not know it, so
//     the resume yields a fresh session (resumed=false, UNKNOWN_SESSION),
//     and the client sees that in its StateChange. Its seqs restart at 1
//     both ways. Server→client messages still queued on the drained node
//     (published, not yet written to the client) are lost with that
//     node's session; resumed=false is how the client learns it. Messages
//     that had reached the SDK are still delivered by Receive.
//   - Not promised: exactly once across the two nodes. Idempotency keys
//     are remembered per node, so a message the drained node handled but
//     whose ack the client did not get would be handled by both nodes; a
//     clustered broker (NATS) dedupes across nodes. The test therefore
//     allows an overlap between the two nodes, logs it, and requires it to
//     be made only of messages the client had not been told were acked.
func TestDrainMovesToTheOtherBackend(t *testing.T) {
	// Not parallel: the drain must come while the Sends still flow, which
	// a loaded machine can let finish first.
	hA, hB := &handled{from: "c"}, &handled{from: "c"}
	drain := server.WithDrain(0, 1000, 50*time.Millisecond) // GoAway at once, reconnect within 50ms
	srvA, addrA := tethertest.Serve(t, server.WithServerID("A"), server.WithHandler(hA), drain)
	srvB, addrB := tethertest.Serve(t, server.WithServerID("B"), server.WithHandler(hB), drain)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sinks := map[string]*client.Session{}
	for _, a := range []string{addrA, addrB} {
		sinks[a] = newSession(t, client.WithAddrs(a), client.WithClientID("sink"), client.WithTopics("up"))
		if err := sinks[a].Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	log := newStateLog()
	s := newSession(t, client.WithAddrs(addrA, addrB), client.WithClientID("c"), fastBackoff,
		client.WithSendBuffer(64, client.Block), log.option())
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_, first := log.await(t, 0, waitLong, "connected", isState(client.StateConnected))
	x, y := addrA, addrB
	srvX, srvY, hX, hY := srvA, srvB, hA, hB
	if first.Backend == addrB {
		x, y = y, x
		srvX, srvY, hX, hY = srvB, srvA, hB, hA
	}
	if st := s.Stats(); st.Backend != x {
		t.Fatalf("stats %+v; the first stream went to %s", st, x)
	}
	sinkY := sinks[y]

	// Phase 1, on X: acked messages, and pushes the application takes.
	const acked, total = 100, 1000
	for i := range acked {
		if err := s.SendWait(ctx, client.Message{Topic: "up", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatalf("SendWait %d: %v", i, err)
		}
	}
	for i := range 50 {
		if n, err := srvX.Publish(ctx, broker.Client("c"), fmt.Appendf(nil, "x%d", i), ""); err != nil || n != 1 {
			t.Fatalf("Publish on X = %d, %v", n, err)
		}
	}
	if err := receiveRun(ctx, s, "x", 50); err != nil {
		t.Fatal(err)
	}
	if got := hX.list(); len(got) != acked {
		t.Fatalf("X handled %d messages after %d acks", len(got), acked)
	}

	// Phase 2: a stream of Sends (at most 64 held by the client, written or
	// not) while X drains.
	sent := make(chan error, 1)
	go func() {
		for i := acked; i < total; i++ {
			if err := s.Send(ctx, client.Message{Topic: "up", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
				sent <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		sent <- nil
	}()
	eventually(t, waitLong, "X handles the stream", func() bool { return len(hX.list()) >= 3*acked })
	drained := make(chan error, 1)
	from := log.len()
	drainAt := time.Now()
	go func() { drained <- srvX.Drain(context.Background()) }()

	_, gone := log.await(t, from, waitLong, "reconnecting after the drain", isState(client.StateReconnecting))
	var ga *client.GoAwayError
	if !errors.As(gone.Err, &ga) || ga.Reason != client.GoAwayDrain {
		// Known SDK bug (see the report): when the writer is mid-Send as the
		// server ends the stream, Send's io.EOF becomes the reason and the
		// go_away read just before it is lost. The move itself still
		// happens (X reports NOT_SERVING), so the rest of the test holds.
		t.Logf("the stream on X ended with %v, not go_away DRAIN (the SDK's Send-EOF bug)", gone.Err)
	}
	_, moved := log.await(t, from, waitLong, "connected to the other backend", isState(client.StateConnected))
	t.Logf("moved from %s to %s %v after the go_away (%v after Drain was called)", x, moved.Backend,
		moved.Time.Sub(gone.Time).Round(time.Millisecond), moved.Time.Sub(drainAt).Round(time.Millisecond))
	if moved.Backend != y || moved.Resumed || moved.ResumeStatus != client.ResumeUnknownSession {
		t.Fatalf("after the drain: backend %s resumed=%v status %v; want %s, a fresh session (UNKNOWN_SESSION)", moved.Backend, moved.Resumed, moved.ResumeStatus, y)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := s.SendWait(ctx, client.Message{Topic: "other", Payload: []byte("flush")}); err != nil {
		t.Fatal(err) // cumulative: every m<i> is acked by Y now
	}

	// Every message reached a node: X handled a prefix, Y the rest, each in
	// order; Y's subscriber got what Y handled.
	onX := hX.list()
	for i, p := range onX {
		if numbered(p) != i {
			t.Fatalf("X handled %q as its message %d: not the in-order prefix", p, i)
		}
	}
	var onY []string
	for _, p := range hY.list() {
		if numbered(p) >= 0 {
			onY = append(onY, p)
		}
	}
	if len(onY) == 0 {
		t.Fatal("Y handled nothing")
	}
	b := numbered(onY[0])
	for i, p := range onY {
		if numbered(p) != b+i {
			t.Fatalf("Y handled %q as its message %d after starting at m%d: a gap, duplicate or reorder", p, i, b)
		}
	}
	if last := numbered(onY[len(onY)-1]); last != total-1 {
		t.Fatalf("Y's last message is m%d, want m%d", last, total-1)
	}
	switch {
	case b < acked:
		t.Fatalf("Y handled m%d, which SendWait had reported acked by X", b)
	case b > len(onX):
		t.Fatalf("m%d..m%d reached neither node (X handled up to m%d, Y from m%d)", len(onX), b-1, len(onX)-1, b)
	}
	t.Logf("X handled m0..m%d (the drain acked what it read); Y handled m%d..m%d; overlap %d", len(onX)-1, b, total-1, len(onX)-b)
	// Y's subscriber receives exactly what Y handled, in order.
	for i, want := range onY {
		m, err := sinkY.Receive(ctx)
		if err != nil {
			t.Fatalf("sink on Y after %d: %v", i, err)
		}
		if string(m.Payload) != want {
			t.Fatalf("sink on Y got %q as message %d, want %q", m.Payload, i, want)
		}
	}

	// The fresh session on Y numbers pushes from 1 again; nothing of X's is
	// delivered twice.
	for i := range 10 {
		if n, err := srvY.Publish(ctx, broker.Client("c"), fmt.Appendf(nil, "y%d", i), ""); err != nil || n != 1 {
			t.Fatalf("Publish on Y = %d, %v", n, err)
		}
	}
	for i := range 10 {
		m, err := s.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != fmt.Sprint("y", i) || m.Seq != uint64(i+1) {
			t.Fatalf("after the move got %q seq %d, want y%d seq %d", m.Payload, m.Seq, i, i+1)
		}
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Drain did not return")
	}
	// One reconnect normally; one more if the go_away was lost to the
	// Send-EOF bug and X was tried again before it reported NOT_SERVING.
	if st := s.Stats(); st.State != client.StateConnected || st.Backend != y || st.Reconnects < 1 {
		t.Fatalf("stats = %+v; states: %s", st, log)
	}
}

// TestRollingRestartOfEveryPathLosesNothing: one node behind three paths
// (proxies), the client knowing all three. Each path is "restarted" in
// turn, twice round, while 10,000 messages flow each way: every connection
// through it is reset and new ones are refused until traffic has moved on
// without it. The session resumes on the node through another path each
// time, and every message arrives exactly once, in order, both ways.
// (With in-memory brokers a session resumes only on the node that holds
// it, hence one node and several paths rather than several nodes.)
func TestRollingRestartOfEveryPathLosesNothing(t *testing.T) {
	t.Parallel()
	dc := profile.Datacenter()
	const n = 10_000
	// Queues larger than the whole run: no slow-consumer cut, no log
	// overflow, so any loss would be the SDK's.
	srv, addr := tethertest.Serve(t, server.WithProfile(dc), server.WithMaxOutboundQueue(2*n))
	paths := []*faultproxy.Proxy{proxyTo(t, addr), proxyTo(t, addr), proxyTo(t, addr)}
	sink := newSession(t, client.WithAddrs(addr), client.WithClientID("sink"), client.WithTopics("up"), client.WithProfile(dc))
	log := newStateLog()
	s := newSession(t, client.WithAddrs(paths[0].Addr(), paths[1].Addr(), paths[2].Addr()), client.WithClientID("dev"),
		client.WithProfile(dc), fastBackoff, log.option())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var down, up atomic.Int64 // messages received so far, in order
	errs := make(chan error, 4)
	receive := func(rs *client.Session, prefix string, count *atomic.Int64) {
		var last uint64
		for i := range n {
			m, err := rs.Receive(ctx)
			if err != nil {
				errs <- fmt.Errorf("%s: after %d: %w", prefix, i, err)
				return
			}
			if string(m.Payload) != fmt.Sprint(prefix, i) || (last != 0 && m.Seq != last+1) {
				errs <- fmt.Errorf("%s: message %d is %q seq %d after seq %d", prefix, i, m.Payload, m.Seq, last)
				return
			}
			last = m.Seq
			count.Add(1)
		}
		errs <- nil
	}
	go receive(s, "down", &down)
	go receive(sink, "up", &up)
	go func() { // the node pushes to the device
		for i := range n {
			if c, err := srv.Publish(ctx, broker.Client("dev"), fmt.Appendf(nil, "down%d", i), ""); err != nil || c != 1 {
				errs <- fmt.Errorf("Publish %d = %d, %v", i, c, err)
				return
			}
		}
		errs <- nil
	}()
	go func() { // and the device sends up
		for i := range n {
			if err := s.Send(ctx, client.Message{Topic: "up", Payload: fmt.Appendf(nil, "up%d", i)}); err != nil {
				errs <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		errs <- nil
	}()
	progress := func() int64 { return min(down.Load(), up.Load()) }

	const restarts = 6
	for k := range restarts {
		p := paths[k%len(paths)]
		at := int64(k+1) * n / (restarts + 2)
		eventually(t, 20*time.Second, fmt.Sprintf("traffic reaches %d before restart %d", at, k), func() bool { return progress() >= at })
		p.Refuse(true)
		p.Reset()
		// The path stays down until traffic has moved on without it.
		eventually(t, 20*time.Second, fmt.Sprintf("traffic flows while path %d is down", k%len(paths)), func() bool { return progress() >= at+n/(4*restarts) })
		p.Refuse(false)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("%v; states: %s", err, log)
		}
	}
	t.Logf("%d messages each way through %d path restarts in %v", n, restarts, time.Since(start).Round(time.Millisecond))
	if err := s.SendWait(ctx, client.Message{Topic: "other", Payload: []byte("flush")}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	// Each round of restarts hits the path the session is on at least once.
	if st.Reconnects < 2 || st.Unacked+st.Queued != 0 {
		t.Fatalf("stats = %+v", st)
	}
	streams := 0
	for _, c := range log.all() {
		if c.State != client.StateConnected {
			continue
		}
		if streams > 0 && c.ResumeStatus != client.ResumeResumed {
			t.Fatalf("stream %d was not a resume: %s", streams, log)
		}
		streams++
	}
	t.Logf("%d reconnects; states: %s", st.Reconnects, log)
}

// TestReconnectMovesAtOnceAndResumes: Session.Reconnect (the network
// changed) drops the stream and resumes on a new one without backoff:
// with a backoff whose first delay is drawn from [0, 1h), only an
// immediate retry comes back within the test's bound.
func TestReconnectMovesAtOnceAndResumes(t *testing.T) {
	t.Parallel()
	srv, addr := tethertest.Serve(t)
	sink := newSession(t, client.WithAddrs(addr), client.WithClientID("sink"), client.WithTopics("up"))
	log := newStateLog()
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("dev"),
		client.WithBackoff(backoff.Config{Base: time.Hour, Cap: time.Hour, Multiplier: 2, ResetAfter: time.Hour}), log.option())
	ctx := ctxT(t)
	if err := sink.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// An acked message proves the stream is fully up (writer running).
	if err := s.SendWait(ctx, client.Message{Topic: "up", Payload: []byte("up0")}); err != nil {
		t.Fatal(err)
	}
	const half = 100
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if err := s.Send(ctx, client.Message{Topic: "up", Payload: fmt.Appendf(nil, "up%d", i)}); err != nil {
				t.Fatal(err)
			}
			if n, err := srv.Publish(ctx, broker.Client("dev"), fmt.Appendf(nil, "down%d", i-1), ""); err != nil || n != 1 {
				t.Fatalf("Publish = %d, %v", n, err)
			}
		}
	}
	send(1, half+1)
	from := log.len()
	asked := time.Now()
	s.Reconnect()
	_, dropped := log.await(t, from, waitLong, "reconnecting", isState(client.StateReconnecting))
	_, back := log.await(t, from, waitLong, "connected again", isState(client.StateConnected))
	t.Logf("Reconnect: stream dropped after %v, resumed %v after the call", dropped.Time.Sub(asked).Round(time.Microsecond), back.Time.Sub(asked).Round(time.Microsecond))
	if dropped.Err == nil || !strings.Contains(dropped.Err.Error(), "Reconnect") {
		t.Fatalf("the stream ended with %v", dropped.Err)
	}
	if !back.Resumed || back.ResumeStatus != client.ResumeResumed {
		t.Fatalf("came back with resumed=%v %v", back.Resumed, back.ResumeStatus)
	}
	send(half+1, 2*half+1)
	if err := receiveRun(ctx, s, "down", 2*half); err != nil {
		t.Fatal(err)
	}
	if err := receiveRun(ctx, sink, "up", 2*half+1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Reconnects != 1 || st.State != client.StateConnected {
		t.Fatalf("stats = %+v; states: %s", st, log)
	}
}

// TestTakenOverSessionClosesForGood: a newer session with the same client
// id takes over; the older one gets go_away TAKEN_OVER, closes and never
// reconnects (reconnecting would take the id back and flap).
func TestTakenOverSessionClosesForGood(t *testing.T) {
	t.Parallel()
	srv, addr := tethertest.Serve(t)
	log := newStateLog()
	old := newSession(t, client.WithAddrs(addr), client.WithClientID("dup"), fastBackoff, log.option())
	ctx := ctxT(t)
	if err := old.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	log.await(t, 0, waitLong, "connected", isState(client.StateConnected))
	newer := newSession(t, client.WithAddrs(addr), client.WithClientID("dup"), fastBackoff)
	if err := newer.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_, closed := log.await(t, 0, waitLong, "closed", isState(client.StateClosed))
	var ga *client.GoAwayError
	if !errors.As(closed.Err, &ga) || ga.Reason != client.GoAwayTakenOver ||
		!strings.Contains(closed.Err.Error(), "TAKEN_OVER") {
		t.Fatalf("closed with %v; want go_away TAKEN_OVER", closed.Err)
	}
	// Closed means done: nothing is accepted and nothing reconnects. (Not
	// checked here: Connect, which may return nil on a closed session; see
	// the report.)
	if err := old.Send(ctx, client.Message{Topic: "t"}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after the takeover = %v, want ErrClosed", err)
	}
	if st := old.Stats(); st.State != client.StateClosed || st.Reconnects != 0 {
		t.Fatalf("stats of the old session = %+v", st)
	}
	var states []client.State
	for _, c := range log.all() {
		states = append(states, c.State)
	}
	if fmt.Sprint(states) != fmt.Sprint([]client.State{client.StateConnecting, client.StateConnected, client.StateClosed}) {
		t.Fatalf("state changes of the old session: %s", log)
	}
	// The client id has one session, the newer one.
	if n, err := srv.Publish(ctx, broker.Client("dup"), []byte("to the newer"), ""); err != nil || n != 1 {
		t.Fatalf("Publish to the client id = %d, %v", n, err)
	}
	if m, err := newer.Receive(ctx); err != nil || string(m.Payload) != "to the newer" {
		t.Fatalf("newer Receive = %v, %v", m, err)
	}
	if st := newer.Stats(); st.State != client.StateConnected || st.Reconnects != 0 {
		t.Fatalf("stats of the newer session = %+v", st)
	}
}

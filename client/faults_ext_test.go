package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// stateLog records every state change of a session (WithOnState) and
// lets a test wait, with a deadline, for one that matches.
type stateLog struct {
	mu      sync.Mutex
	changes []client.StateChange
	grew    chan struct{} // closed and replaced on every change
}

func newStateLog() *stateLog { return &stateLog{grew: make(chan struct{})} }

// option is the WithOnState option that feeds the log.
func (l *stateLog) option() client.Option {
	return client.WithOnState(func(c client.StateChange) {
		l.mu.Lock()
		l.changes = append(l.changes, c)
		close(l.grew)
		l.grew = make(chan struct{})
		l.mu.Unlock()
	})
}

// len returns how many changes were recorded so far: a cursor for await.
func (l *stateLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.changes)
}

func (l *stateLog) all() []client.StateChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.StateChange(nil), l.changes...)
}

// find waits up to d for a change at index from or later that matches
// match, and returns its index; ok is false when d passed first.
func (l *stateLog) find(from int, d time.Duration, match func(client.StateChange) bool) (int, client.StateChange, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for i := from; i < len(l.changes); i++ {
			if match(l.changes[i]) {
				c := l.changes[i]
				l.mu.Unlock()
				return i, c, true
			}
		}
		from = len(l.changes)
		grew := l.grew
		l.mu.Unlock()
		select {
		case <-grew:
		case <-timer.C:
			return 0, client.StateChange{}, false
		}
	}
}

// await is find that fails the test when d passes first.
func (l *stateLog) await(t *testing.T, from int, d time.Duration, what string, match func(client.StateChange) bool) (int, client.StateChange) {
	t.Helper()
	i, c, ok := l.find(from, d, match)
	if !ok {
		t.Fatalf("no state change %q within %v; changes: %s", what, d, l)
	}
	return i, c
}

func (l *stateLog) String() string {
	var b strings.Builder
	for _, c := range l.all() {
		fmt.Fprintf(&b, "\n\t%s %s backend=%s resumed=%v status=%v err=%v", c.Time.Format("15:04:05.000"), c.State, c.Backend, c.Resumed, c.ResumeStatus, c.Err)
	}
	return b.String()
}

func isState(s client.State) func(client.StateChange) bool {
	return func(c client.StateChange) bool { return c.State == s }
}

// eventually polls cond every few milliseconds until it holds, and fails
// the test when d passes first.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling step, not a guess
	}
}

// sessionOn returns a connected session whose first stream went to
// backend. The pick among healthy backends is random, so sessions are
// made (and closed) until one lands there: each try is a coin flip among
// the addresses, and forty misses in a row do not happen.
func sessionOn(t *testing.T, backend string, opts ...client.Option) (*client.Session, *stateLog) {
	t.Helper()
	for range 40 {
		log := newStateLog()
		s, err := client.New(append(opts, log.option())...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		err = s.Connect(ctx)
		var first client.StateChange
		if err == nil {
			_, first = log.await(t, 0, waitLong, "first connected", isState(client.StateConnected))
		}
		if err == nil && first.Backend == backend {
			cancel()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				if err := s.Close(ctx); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return s, log
		}
		if cerr := s.Close(ctx); cerr != nil {
			t.Fatal(cerr)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("40 sessions never picked %s", backend)
	return nil, nil
}

// receiveRun receives n messages from s, expecting the payloads
// prefix0..prefix(n-1) with contiguous seqs (one session, resumed), and
// fails on a gap, a duplicate or a reordering.
func receiveRun(ctx context.Context, s *client.Session, prefix string, n int) error {
	var last uint64
	for i := range n {
		m, err := s.Receive(ctx)
		if err != nil {
			return fmt.Errorf("%s: after %d messages: %w", prefix, i, err)
		}
		if want := fmt.Sprint(prefix, i); string(m.Payload) != want || (last != 0 && m.Seq != last+1) {
			return fmt.Errorf("%s: message %d is %q seq %d (previous seq %d), want %q", prefix, i, m.Payload, m.Seq, last, want)
		}
		last = m.Seq
	}
	return nil
}

// TestBlackholeDetectedAndResumedOnTheDirectPath: the path a session uses
// goes silent (a half-open connection: nothing is reset, bytes vanish).
// The client's heartbeat (1s asked, datacenter: dead after 1s × 3 + 0.5s)
// notices, and the session resumes on the same server through the other
// address it knows, with everything published or sent during the outage
// delivered once, in order.
func TestBlackholeDetectedAndResumedOnTheDirectPath(t *testing.T) {
	t.Parallel()
	synctest.Test(t, blackholeDetectedAndResumed)
}

// blackholeDetectedAndResumed runs in a bubble: two paths to one server
// over bufconn, "proxy" (which can be blackholed) and "direct".
func blackholeDetectedAndResumed(t *testing.T) {
	dc := profile.Datacenter()
	srv, link := bbServe(t, server.WithProfile(dc))
	const proxy, direct = "passthrough:///proxy", "passthrough:///direct"
	paths := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		if addr == "proxy" {
			return link.dial(ctx, addr)
		}
		return link.lis.DialContext(ctx)
	})
	sink := newSession(t, client.WithAddrs(direct), client.WithDialOptions(paths), client.WithClientID("sink"), client.WithTopics("up"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// After a heartbeat timeout the SDK avoids that backend for the
	// backoff Cap (2s here, long enough for the next pick to go to the
	// direct path); the short open timeout bounds any attempt that lands
	// on the blackholed path all the same.
	s, log := sessionOn(t, proxy, client.WithAddrs(proxy, direct), client.WithDialOptions(paths), client.WithClientID("dev"),
		client.WithProfile(dc), client.WithHeartbeat(time.Second), client.WithOpenTimeout(3*time.Second),
		client.WithBackoff(backoff.Config{Base: 50 * time.Millisecond, Cap: 2 * time.Second, Multiplier: 2, ResetAfter: time.Second}))
	connectedAt, _ := log.await(t, 0, waitLong, "connected", isState(client.StateConnected))

	// Traffic both ways before, during and after the outage. The pushes
	// keep the client reading right up to the blackhole, so its silence
	// starts when the path dies.
	const before, during, after = 50, 100, 50
	pushes := make(chan error, 1)
	go func() {
		pushes <- receiveRun(ctx, s, "down", before+during+after)
	}()
	ups := make(chan error, 1)
	go func() {
		ups <- receiveRun(ctx, sink, "up", before+during+after)
	}()
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if n, err := srv.Publish(ctx, broker.Client("dev"), fmt.Appendf(nil, "down%d", i), ""); err != nil || n != 1 {
				t.Fatalf("Publish %d = %d, %v", i, n, err)
			}
		}
	}
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := s.Send(ctx, client.Message{Topic: "up", Payload: fmt.Appendf(nil, "up%d", i)}); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
		}
	}
	publish(0, before)
	send(0, before)
	if err := s.SendWait(ctx, client.Message{Topic: "other", Payload: []byte("flush")}); err != nil {
		t.Fatal(err)
	}

	link.black.Store(true)
	blackholedAt := time.Now()
	// Published and sent while the path is dead: the server queues for the
	// session, the client buffers (or writes into the void and keeps the
	// message until acked).
	publish(before, before+during)
	send(before, before+during)

	_, lost := log.await(t, connectedAt, 20*time.Second, "reconnecting after the blackhole", isState(client.StateReconnecting))
	detection := lost.Time.Sub(blackholedAt)
	t.Logf("blackhole detected after %v (dead_after 3.5s): %v", detection.Round(time.Millisecond), lost.Err)
	if lost.Err == nil || !strings.Contains(lost.Err.Error(), "heartbeat timeout") {
		t.Fatalf("the stream ended with %v; want a heartbeat timeout", lost.Err)
	}
	// No false death: the client read something at most one heartbeat
	// interval before the blackhole (the server writes at least that
	// often), so it cannot have been silent for dead_after (3.5s) sooner
	// than 2.5s after it.
	if detection < 2500*time.Millisecond {
		t.Fatalf("declared dead %v after the blackhole: sooner than dead_after allows", detection)
	}
	_, back := log.await(t, connectedAt, 20*time.Second, "connected on the direct path", func(c client.StateChange) bool {
		return c.State == client.StateConnected && c.Backend == direct
	})
	t.Logf("resumed on %s %v after the detection (%v after the blackhole); states: %s",
		back.Backend, back.Time.Sub(lost.Time).Round(time.Millisecond), back.Time.Sub(blackholedAt).Round(time.Millisecond), log)
	if !back.Resumed || back.ResumeStatus != client.ResumeResumed {
		t.Fatalf("came back with resumed=%v status %v; want the same session resumed", back.Resumed, back.ResumeStatus)
	}
	publish(before+during, before+during+after)
	send(before+during, before+during+after)
	for _, ch := range []chan error{pushes, ups} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SendWait(ctx, client.Message{Topic: "other", Payload: []byte("last")}); err != nil {
		t.Fatal(err) // its ack is cumulative: everything sent before is acked too
	}
	if st := s.Stats(); st.Backend != direct || st.State != client.StateConnected || st.Unacked+st.Queued != 0 {
		t.Fatalf("stats after the outage: %+v", st)
	}
}

// TestLatencyAndBandwidthCauseNoFalseDeath: 200ms of added latency per
// direction and a 64 KiB/s cap per direction, with a 1s heartbeat (dead
// after 3.5s): a session carrying a steady stream both ways for 5s never
// reconnects and delivers everything. In fake time, over an in-memory
// shaped link.
func TestLatencyAndBandwidthCauseNoFalseDeath(t *testing.T) {
	t.Parallel()
	synctest.Test(t, latencyAndBandwidth)
}

func latencyAndBandwidth(t *testing.T) {
	dc := profile.Datacenter()
	srv, lis := tethertest.ServeBufconn(t, server.WithProfile(dc))
	shaped := func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := lis.DialContext(ctx)
		if err != nil {
			return nil, err
		}
		return newShapedConn(c, 200*time.Millisecond, 64<<10), nil
	}
	sink := newSession(t, client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))),
		client.WithClientID("sink"), client.WithTopics("up"))
	log := newStateLog()
	s := newSession(t, client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(shaped)),
		client.WithClientID("dev"), client.WithProfile(dc), client.WithHeartbeat(time.Second), log.option())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// 40 messages a second each way, 1 KiB each: about 45 KiB/s per
	// direction with framing, under the cap, for 5 seconds.
	const rate, seconds, size = 40, 5, 1 << 10
	const n = rate * seconds
	payload := func(kind string, i int) []byte {
		b := make([]byte, size)
		copy(b, fmt.Sprintf("%s%d.", kind, i))
		return b
	}
	check := func(s *client.Session, kind string) error {
		var last uint64
		for i := range n {
			m, err := s.Receive(ctx)
			if err != nil {
				return fmt.Errorf("%s: after %d: %w", kind, i, err)
			}
			if want := fmt.Sprintf("%s%d.", kind, i); !strings.HasPrefix(string(m.Payload), want) || len(m.Payload) != size || (last != 0 && m.Seq != last+1) {
				return fmt.Errorf("%s: message %d has seq %d after %d and starts %q", kind, i, m.Seq, last, m.Payload[:min(len(m.Payload), 16)])
			}
			last = m.Seq
		}
		return nil
	}
	downs, ups := make(chan error, 1), make(chan error, 1)
	go func() { downs <- check(s, "down") }()
	go func() { ups <- check(sink, "up") }()
	start := time.Now()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		if n, err := srv.Publish(ctx, broker.Client("dev"), payload("down", i), ""); err != nil || n != 1 {
			t.Fatalf("Publish %d = %d, %v", i, n, err)
		}
		if err := s.Send(ctx, client.Message{Topic: "up", Payload: payload("up", i)}); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Since(start)
	for _, ch := range []chan error{downs, ups} {
		if err := <-ch; err != nil {
			t.Fatalf("%v; states: %s", err, log)
		}
	}
	t.Logf("%d KiB each way over %v of sending, all delivered %v after the start", n*size>>10, sent.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if err := s.SendWait(ctx, client.Message{Topic: "other", Payload: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Reconnects != 0 || st.State != client.StateConnected {
		t.Fatalf("stats = %+v; states: %s", st, log)
	}
	for _, c := range log.all() {
		if c.State != client.StateConnecting && c.State != client.StateConnected {
			t.Fatalf("state changes: %s", log)
		}
	}
}

// strictProfile is a server profile that polices transport pings hard:
// MinTime 1 minute, so a client pinging every 10s (grpc-go's fastest, the
// datacenter profile's Client.Time) gets GOAWAY too_many_pings on its
// third ping of an otherwise silent connection. Its own heartbeat default
// is short (2s), but a quiet client may ask for up to 5 minutes; its
// transport pings (Server.Time) are rare so they do not keep the client
// reading.
func strictProfile() profile.Profile {
	p := profile.Datacenter()
	p.Name = "strict"
	p.Heartbeat.Max = 5 * time.Minute
	p.Enforcement.MinTime = time.Minute
	p.Enforcement.PermitWithoutStream = true
	p.Server.Time, p.Server.Timeout = 5*time.Minute, 20*time.Second
	p.Server.MaxConnectionIdle, p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0, 0
	p.Client.Time = 2 * time.Minute
	return p
}

// bubbleServer serves srv over bufconn inside the current synctest bubble
// and returns the dial option that reaches it, and a stop function.
func bubbleServer(t *testing.T, opts ...server.Option) (*server.Server, grpc.DialOption) {
	t.Helper()
	srv, lis := tethertest.ServeBufconn(t, opts...)
	return srv, grpc.WithContextDialer(tethertest.Dialer(lis))
}

// TestKeepaliveFloorFromWelcomeAvoidsTooManyPings: against a server with
// Enforcement.MinTime 1m, a datacenter client (transport ping every 10s of
// read silence) that asked for a 2-minute heartbeat would be killed with
// too_many_pings within 40s (the control case proves the setup does). The
// SDK keeps its keepalive at or above 2 × the floor it learns from
// Welcome (here its own choice, 1.5 × the 2-minute heartbeat, already is;
// TestKeepaliveFloorCostsNoExtraStream covers a raise) and stays connected
// through 10 minutes of fake idle time.
func TestKeepaliveFloorFromWelcomeAvoidsTooManyPings(t *testing.T) {
	t.Parallel()
	if err := strictProfile().Validate(); err != nil {
		t.Fatal(err)
	}
	t.Run("control: a raw 10s-keepalive client is killed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, dial := bubbleServer(t, server.WithProfile(strictProfile()))
			cc, err := grpc.NewClient("passthrough:///bufnet", dial,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithKeepaliveParams(profile.Datacenter().Client))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{
				ClientId: "raw", HeartbeatInterval: durationpb.New(2 * time.Minute)}}}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for {
				f, err := stream.Recv()
				if err != nil {
					t.Logf("raw stream ended after %v of fake time: %v", time.Since(start), err)
					if !strings.Contains(err.Error(), "too_many_pings") {
						t.Fatalf("ended with %v; want too_many_pings (the setup must be strict enough)", err)
					}
					return
				}
				if time.Since(start) > 10*time.Minute {
					t.Fatal("the raw client was not killed: the setup does not exercise the floor")
				}
				if p := f.GetPing(); p != nil {
					_ = stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: p.GetId(), SentAt: p.GetSentAt()}}})
				}
			}
		})
	})
	t.Run("the SDK raises its keepalive", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, dial := bubbleServer(t, server.WithProfile(strictProfile()))
			log := newStateLog()
			s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(dial),
				client.WithClientID("quiet"), client.WithProfile(profile.Datacenter()),
				client.WithHeartbeat(2*time.Minute), log.option())
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Close(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			ctx := context.Background()
			if err := s.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Minute) // fake time: ten idle minutes
			synctest.Wait()
			st := s.Stats()
			t.Logf("after 10 fake minutes: reconnects %d, state %v, resume %v, RTT %v; states: %s", st.Reconnects, st.State, st.ResumeStatus, st.RTT, log)
			for _, c := range log.all() {
				if c.Err != nil && strings.Contains(c.Err.Error(), "too_many_pings") {
					t.Fatalf("too_many_pings: %s", log)
				}
			}
			if st.Reconnects > 1 || st.State != client.StateConnected {
				t.Fatalf("stats = %+v; states: %s", st, log)
			}
			if st.Reconnects == 1 && st.ResumeStatus != client.ResumeResumed {
				t.Fatalf("the keepalive reconnect did not resume: %+v", st)
			}
			// Still a working session.
			if n, err := srv.Publish(ctx, broker.Client("quiet"), []byte("still here"), ""); err != nil || n != 1 {
				t.Fatalf("Publish = %d, %v", n, err)
			}
			if m, err := s.Receive(ctx); err != nil || string(m.Payload) != "still here" {
				t.Fatalf("Receive = %v, %v", m, err)
			}
		})
	})
}

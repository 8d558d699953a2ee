package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// The heartbeat tests run in a synctest bubble over bufconn: fake time, so
// "after exactly 35s" is exact and an hour costs milliseconds.

// bubbleNode is a server and a client connection inside a bubble.
type bubbleNode struct {
	srv *server.Server
	cc  *grpc.ClientConn
}

func startBubbleNode(t *testing.T, opts ...server.Option) *bubbleNode {
	t.Helper()
	srv, lis := tethertest.ServeBufconn(t, opts...)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(tethertest.Dialer(lis)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &bubbleNode{srv: srv, cc: cc}
}

// frameAt is a frame and the fake time it arrived.
type frameAt struct {
	f  *tetherv1.ConnectResponse
	at time.Time
}

// bubbleConn is a Connect stream whose frames are collected by one
// goroutine; end reports the final status and when it came.
type bubbleConn struct {
	s      tetherv1.TetherService_ConnectClient
	cancel context.CancelFunc
	frames chan frameAt
	endErr error
	endAt  time.Time
	ended  chan struct{}
}

func (b *bubbleNode) connect(t *testing.T, h *tetherv1.Hello) (*bubbleConn, *tetherv1.Welcome) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := tetherv1.NewTetherServiceClient(b.cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &bubbleConn{s: s, cancel: cancel, frames: make(chan frameAt, 1024), ended: make(chan struct{})}
	go func() {
		defer close(c.ended)
		for {
			f, err := s.Recv()
			if err != nil {
				c.endErr, c.endAt = err, time.Now()
				close(c.frames)
				return
			}
			c.frames <- frameAt{f, time.Now()}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-c.ended
	})
	if err := s.Send(hello(h)); err != nil {
		t.Fatal(err)
	}
	w := (<-c.frames).f.GetWelcome()
	if w == nil {
		t.Fatal("no welcome")
	}
	return c, w
}

func (c *bubbleConn) send(t *testing.T, f *tetherv1.ConnectRequest) {
	if err := c.s.Send(f); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("send: %v", err)
	}
}

// drain returns the frames that have arrived so far.
func (c *bubbleConn) drain() []frameAt {
	var out []frameAt
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		default:
			return out
		}
	}
}

func pings(fs []frameAt) []time.Time {
	var out []time.Time
	for _, f := range fs {
		if f.f.GetPing() != nil {
			out = append(out, f.at)
		}
	}
	return out
}

func TestServerPingsOnlyWhenWriteIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		c, _ := b.connect(t, &tetherv1.Hello{HeartbeatInterval: durationpbNew(10 * time.Second)})
		start := time.Now()
		// Idle: the first ping comes exactly one interval after the welcome.
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		ps := pings(c.drain())
		if len(ps) != 1 || ps[0].Sub(start) != 10*time.Second {
			t.Fatalf("pings at %v after start; want one at exactly 10s", ps)
		}
		// Busy: the client sends a message every 3s, the server acks each
		// (a write), so it is never write-idle and never pings.
		for i := uint64(1); i <= 20; i++ {
			c.send(t, toTopic(i, "t", "x"))
			time.Sleep(3 * time.Second)
		}
		synctest.Wait()
		fs := c.drain()
		if ps := pings(fs); len(ps) != 0 {
			t.Fatalf("%d pings on a busy stream", len(ps))
		}
		var acks int
		for _, f := range fs {
			if f.f.GetAck() != nil {
				acks++
			}
		}
		if acks != 20 {
			t.Fatalf("%d acks for 20 messages sent 3s apart; want 20 (each within the ack delay)", acks)
		}
	})
}

// A client that pings every interval drives the heartbeat: the server
// answers and does not ping as well (their timers would race every
// interval); once the client's pings stop, the server pings again, half an
// interval after the one that did not come.
func TestServerLeavesTheHeartbeatToAPingingClient(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		const iv = 10 * time.Second
		c, w := b.connect(t, &tetherv1.Hello{HeartbeatInterval: durationpbNew(iv)})
		ping := func(id uint64) *tetherv1.ConnectRequest {
			return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: id, SentAt: timestamppb.Now()}}}
		}
		// The client pings exactly on the server's schedule, the worst case.
		for i := range uint64(30) {
			time.Sleep(iv)
			c.send(t, ping(i+1))
		}
		synctest.Wait()
		fs := c.drain()
		var pongs int
		for _, f := range fs {
			if f.f.GetPong() != nil {
				pongs++
			}
		}
		if ps := pings(fs); len(ps) > 1 || pongs != 30 {
			// The first interval may go to the server: the client has
			// not pinged yet.
			t.Fatalf("%d server pings and %d pongs for 30 client pings; want at most 1 and 30", len(ps), pongs)
		}
		// A ping that comes on time is never a miss, though the timer
		// may fire at the same instant.
		r, err := tetherv1.NewAdminServiceClient(b.cc).GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.GetEvents() {
			if e.GetKind() == tetherv1.SessionEventKind_SESSION_EVENT_KIND_HEARTBEAT_MISSED {
				t.Fatalf("heartbeat-missed event for a client pinging every interval: %v", e)
			}
		}
		// The client stops pinging: the server pings 1.5 intervals after
		// the last client ping, then every interval (until it declares
		// the silent client dead).
		last := time.Now()
		time.Sleep(3 * iv)
		synctest.Wait()
		ps := pings(c.drain())
		want := []time.Duration{iv + iv/2, 2*iv + iv/2}
		if len(ps) != len(want) {
			t.Fatalf("server pings at %v after the last client ping; want %v", ps, want)
		}
		for i, at := range ps {
			if d := at.Sub(last); d != want[i] {
				t.Fatalf("server ping %d at %v after the last client ping; want %v", i+1, d, want[i])
			}
		}
	})
}

func TestDeadAfterExactlyIntervalTimesMisses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		c, w := b.connect(t, &tetherv1.Hello{ClientId: "mute", HeartbeatInterval: durationpbNew(10 * time.Second)})
		lastSent := time.Now()
		// The client answers nothing: dead after 10s × 3 misses + 5s grace.
		<-c.ended
		if got := c.endAt.Sub(lastSent); got != 35*time.Second {
			t.Fatalf("declared dead after %v of silence; want exactly 35s", got)
		}
		if st := status.Convert(c.endErr); st.Code() != codes.DeadlineExceeded || !contains(st.Message(), "heartbeat timeout") {
			t.Fatalf("ended with %v", st)
		}
		// It sent a ping every interval while waiting.
		if ps := pings(c.drain()); len(ps) != 3 {
			t.Fatalf("%d pings before death; want 3 (at 10s, 20s, 30s)", len(ps))
		}
		// The session waits for a resume, with the misses on record.
		r, err := tetherv1.NewAdminServiceClient(b.cc).GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		if err != nil || r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_DETACHED {
			t.Fatalf("session after death: %v %v", r, err)
		}
		var missed int
		for _, e := range r.GetEvents() {
			if e.GetKind() == tetherv1.SessionEventKind_SESSION_EVENT_KIND_HEARTBEAT_MISSED {
				missed++
			}
		}
		if missed != 3 { // at 15s and 25s (each half an interval late), then the death itself
			t.Fatalf("%d heartbeat-missed events; want 3: %v", missed, r.GetEvents())
		}
	})
}

func TestAnyFrameCountsAsLife(t *testing.T) {
	t.Parallel()
	frames := map[string]*tetherv1.ConnectRequest{
		"pong":        {Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{}}},
		"ack":         ack(0),
		"subscribe":   {Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: []string{"x"}}}},
		"unsubscribe": {Frame: &tetherv1.ConnectRequest_Unsubscribe{Unsubscribe: &tetherv1.Unsubscribe{Topics: []string{"x"}}}},
		"ping":        {Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{}}},
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := startBubbleNode(t, noMaxAge())
				c, _ := b.connect(t, &tetherv1.Hello{HeartbeatInterval: durationpbNew(10 * time.Second)})
				// One frame every 30s (just under the 35s limit) for an hour.
				for range 120 {
					time.Sleep(30 * time.Second)
					c.send(t, f)
				}
				synctest.Wait()
				select {
				case <-c.ended:
					t.Fatalf("a stream sending %s every 30s died: %v", name, c.endErr)
				default:
				}
			})
		})
	}
}

func TestSweepOverManyIdleSessions(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t, noMaxAge())
		const n = 200
		var alive, mute []*bubbleConn
		for i := range n {
			c, _ := b.connect(t, &tetherv1.Hello{ClientId: fmt.Sprint("c", i), HeartbeatInterval: durationpbNew(10 * time.Second)})
			if i%2 == 0 {
				alive = append(alive, c)
				go answerPings(c)
			} else {
				mute = append(mute, c)
			}
			time.Sleep(50 * time.Millisecond) // spread the sessions over the interval
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		for _, c := range mute {
			select {
			case <-c.ended:
			default:
				t.Fatal("a mute session is still connected after 10 minutes")
			}
		}
		for _, c := range alive {
			select {
			case <-c.ended:
				t.Fatalf("a session answering pings died: %v", c.endErr)
			default:
			}
		}
		l, err := tetherv1.NewAdminServiceClient(b.cc).ListSessions(context.Background(), &tetherv1.ListSessionsRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		states := map[tetherv1.SessionState]int{}
		for _, s := range l.GetSessions() {
			states[s.GetState()]++
		}
		// The mute ones expired after the 2-minute resume window.
		if states[tetherv1.SessionState_SESSION_STATE_CONNECTED] != n/2 || len(l.GetSessions()) != n/2 {
			t.Fatalf("sessions by state: %v", states)
		}
	})
}

// answerPings answers every server ping with a pong, as the SDK does.
func answerPings(c *bubbleConn) {
	for f := range c.frames {
		if p := f.f.GetPing(); p != nil {
			_ = c.s.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: p.GetId(), SentAt: p.GetSentAt()}}})
		}
	}
}

// noMaxAge is the default profile without MaxConnectionAge, for tests that
// hold one stream longer than the age allows.
func noMaxAge() server.Option {
	p := profile.Default()
	p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0
	return server.WithProfile(p)
}

func TestMaxAgeGoAwayBeforeTheTransportKills(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t) // default profile: MaxConnectionAge 30m, grace 5m
		c, _ := b.connect(t, &tetherv1.Hello{HeartbeatInterval: durationpbNew(time.Minute)})
		start := time.Now()
		var goAway *tetherv1.GoAway
		for f := range c.frames {
			if p := f.f.GetPing(); p != nil {
				c.send(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: p.GetId(), SentAt: p.GetSentAt()}}})
			}
			if g := f.f.GetGoAway(); g != nil {
				goAway = g
			}
		}
		<-c.ended
		if goAway.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_MAX_AGE {
			t.Fatalf("go_away = %v; want MAX_AGE", goAway)
		}
		age := c.endAt.Sub(start)
		if age < 21*time.Minute || age > 26*time.Minute {
			t.Fatalf("the stream ended after %v; want within [70%%, 85%%] of the 30m max age", age)
		}
		// It ended cleanly (OK after a GoAway), not by the transport's kill.
		if !errors.Is(c.endErr, io.EOF) {
			t.Fatalf("ended with %v; want a clean end after go_away MAX_AGE", c.endErr)
		}
	})
}

func TestHalfClosedStreamListensUntilTheDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		c, _ := b.connect(t, &tetherv1.Hello{ClientId: "listener", HeartbeatInterval: durationpbNew(time.Minute)})
		if err := c.s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		time.Sleep(2 * time.Minute)
		if _, err := b.srv.Publish(context.Background(), brokerClient("listener"), []byte("still here"), ""); err != nil {
			t.Fatal(err)
		}
		var got string
		for f := range c.frames {
			if m := f.f.GetMessage(); m != nil {
				got = string(m.GetPayload())
			}
		}
		<-c.ended
		if got != "still here" {
			t.Fatalf("a half-closed stream did not receive: %q", got)
		}
		if d := c.endAt.Sub(start); d != 3*time.Minute+5*time.Second {
			t.Fatalf("the half-closed stream ended after %v; want the heartbeat deadline, 3m5s", d)
		}
	})
}

func TestNoHelloTimesOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := tetherv1.NewTetherServiceClient(b.cc).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = s.Recv()
		if st := status.Convert(err); st.Code() != codes.DeadlineExceeded || !contains(st.Message(), "no hello within 10s") {
			t.Fatalf("a silent stream ended with %v", st)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("ended after %v, want exactly 10s", d)
		}
	})
}

func TestDrainIsPacedOverTheWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		window time.Duration
		rate   float64
		gap    time.Duration
	}{
		{"spread over the window", 10 * time.Second, 1000, time.Second},
		{"capped by the rate", time.Second, 2, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := startBubbleNode(t, noMaxAge(), server.WithDrain(tc.window, tc.rate, time.Second))
				var conns []*bubbleConn
				for i := range 10 {
					c, _ := b.connect(t, &tetherv1.Hello{ClientId: fmt.Sprint("d", i), HeartbeatInterval: durationpbNew(time.Minute)})
					conns = append(conns, c)
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := b.srv.Drain(ctx); err != nil {
					t.Fatalf("Drain = %v", err)
				}
				var at []time.Duration
				for _, c := range conns {
					<-c.ended
					for _, f := range c.drain() {
						if f.f.GetGoAway().GetReason() == tetherv1.GoAwayReason_GO_AWAY_REASON_DRAIN {
							at = append(at, f.at.Sub(start))
						}
					}
				}
				slices.Sort(at)
				if len(at) != 10 {
					t.Fatalf("%d go_aways for 10 sessions", len(at))
				}
				for i, d := range at {
					if d != time.Duration(i)*tc.gap {
						t.Fatalf("go_aways at %v; want one every %v from 0s", at, tc.gap)
					}
				}
			})
		})
	}
}

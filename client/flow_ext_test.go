package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
)

// These tests hold the SDK's side of the protocol's "Flow control" (see
// frames.proto) against a scripted TetherService in a synctest bubble:
// the receive window and its acks, Gap, ack_now, pacing to the announced
// frame rate, the refusal of a message for a full target, and takeover.

// flowFake implements TetherService: stream n (from 1) runs script with
// the stream's Hello.
type flowFake struct {
	tetherv1.UnimplementedTetherServiceServer
	script func(n int, hello *tetherv1.Hello, st *flowStream) error

	mu sync.Mutex
	n  int
}

func (f *flowFake) Connect(st tetherv1.TetherService_ConnectServer) error {
	h, err := st.Recv()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	return f.script(n, h.GetHello(), &flowStream{st: st})
}

// flowStream is a server stream that several goroutines may send on.
type flowStream struct {
	st tetherv1.TetherService_ConnectServer
	mu sync.Mutex
}

func (s *flowStream) send(f *tetherv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Send(f)
}

func (s *flowStream) welcome(edit func(w *tetherv1.Welcome)) error {
	w := &tetherv1.Welcome{SessionId: "s1", ResumeToken: "tok", ServerId: "fake",
		HeartbeatInterval: durationpb.New(15 * time.Second), HeartbeatMisses: 3,
		ResumeStatus: tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED}
	if edit != nil {
		edit(w)
	}
	return s.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Welcome{Welcome: w}})
}

func (s *flowStream) push(seq uint64, payload string) error {
	return s.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: &tetherv1.ServerMessage{Seq: seq, Payload: []byte(payload)}}})
}

func (s *flowStream) ack(seq uint64) error {
	return s.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ack{Ack: &tetherv1.Ack{Seq: seq}}})
}

// serve answers pings until the stream ends and hands every other frame
// to on (which may be nil), sending under the stream's lock.
func (s *flowStream) serve(on func(*tetherv1.ConnectRequest) error) error {
	return serveFrames(lockedStream{s}, on)
}

// lockedStream is a flowStream whose Send takes its lock.
type lockedStream struct{ *flowStream }

func (l lockedStream) Recv() (*tetherv1.ConnectRequest, error) { return l.st.Recv() }

func (l lockedStream) Send(f *tetherv1.ConnectResponse) error { return l.send(f) }

// flowSession serves f on bufconn in the bubble and returns a session
// dialing it.
func flowSession(t *testing.T, f *flowFake, opts ...client.Option) *client.Session {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	tetherv1.RegisterTetherServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	s, err := client.New(append([]client.Option{client.WithAddrs("passthrough:///bufnet"),
		client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))),
		client.WithBackoff(backoff.Config{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond, Multiplier: 2, ResetAfter: time.Second})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		gs.Stop()
	})
	return s
}

// recvLosses records what WithOnLoss reports.
type recvLosses struct {
	mu  sync.Mutex
	all []client.Loss
}

func (l *recvLosses) option() client.Option {
	return client.WithOnLoss(func(x client.Loss) {
		l.mu.Lock()
		l.all = append(l.all, x)
		l.mu.Unlock()
	})
}

func (l *recvLosses) list() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, x := range l.all {
		fmt.Fprintf(&b, "[%s %s %d-%d %q]", x.Cause, x.SessionID, x.Range.First, x.Range.Last, x.Reason)
	}
	return b.String()
}

// acks collects the seqs of the client's Ack frames.
type acks struct {
	mu   sync.Mutex
	seqs []uint64
}

func (a *acks) on(f *tetherv1.ConnectRequest) error {
	if ack := f.GetAck(); ack != nil {
		a.mu.Lock()
		a.seqs = append(a.seqs, ack.GetSeq())
		a.mu.Unlock()
	}
	return nil
}

func (a *acks) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprint(a.seqs)
}

func receiveN(t *testing.T, s *client.Session, n int) []string {
	t.Helper()
	var got []string
	for range n {
		m, err := s.Receive(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", m.Seq, m.Payload))
	}
	return got
}

func TestHelloAsksForTheReceiveWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		opts        []client.Option
		msgs, bytes uint32
	}{
		{"default", nil, 1024, 4 << 20},
		{"WithReceiveWindow", []client.Option{client.WithReceiveWindow(10, 1000)}, 10, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				w := firstHello(t, tc.opts...).GetReceiveWindow()
				if w.GetMessages() != tc.msgs || w.GetBytes() != tc.bytes {
					t.Fatalf("Hello.receive_window = %v; want %d messages, %d bytes", w, tc.msgs, tc.bytes)
				}
			})
		})
	}
}

func TestReceiveWindowIsValidated(t *testing.T) {
	t.Parallel()
	for _, w := range [][2]int{{0, 1}, {1, 0}, {-1, 100}, {100, -1}, {math.MaxUint32 + 1, 100}, {100, math.MaxUint32 + 1}} {
		_, err := client.New(client.WithAddrs("127.0.0.1:1"), client.WithReceiveWindow(w[0], w[1]))
		if err == nil || !strings.Contains(err.Error(), "WithReceiveWindow") {
			t.Errorf("WithReceiveWindow(%d, %d): New = %v; want an error naming the option", w[0], w[1], err)
		}
	}
	if _, err := client.New(client.WithAddrs("127.0.0.1:1"), client.WithReceiveWindow(1, math.MaxUint32)); err != nil {
		t.Errorf("WithReceiveWindow(1, MaxUint32): %v", err)
	}
}

// The session acks once half the granted window, in messages or in bytes,
// was taken by the application and not acked, and on its 2s timer
// otherwise; the window granted in Welcome counts, not the one asked.
func TestAcksAtHalfTheGrantedWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		granted       *tetherv1.ReceiveWindow
		payload       string
		atOnce, later int // messages taken: the first ack goes at once after atOnce; one more waits for the timer
	}{
		{"messages", &tetherv1.ReceiveWindow{Messages: 8, Bytes: 1 << 20}, "x", 4, 5},
		{"bytes", &tetherv1.ReceiveWindow{Messages: 1000, Bytes: 100}, strings.Repeat("x", 30), 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var got acks
				f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
					if err := st.welcome(func(w *tetherv1.Welcome) { w.ReceiveWindow = tc.granted }); err != nil {
						return err
					}
					for seq := range uint64(8) {
						if err := st.push(seq+1, tc.payload); err != nil {
							return err
						}
					}
					return st.serve(got.on)
				}}
				s := flowSession(t, f)
				receiveN(t, s, tc.atOnce-1)
				synctest.Wait()
				if a := got.String(); a != "[]" {
					t.Fatalf("acks after %d taken: %s; want none yet", tc.atOnce-1, a)
				}
				receiveN(t, s, 1)
				synctest.Wait()
				if a, want := got.String(), fmt.Sprintf("[%d]", tc.atOnce); a != want {
					t.Fatalf("acks after %d taken: %s; want %s at once", tc.atOnce, a, want)
				}
				receiveN(t, s, tc.later-tc.atOnce)
				time.Sleep(2*time.Second - time.Millisecond)
				synctest.Wait()
				if a, want := got.String(), fmt.Sprintf("[%d]", tc.atOnce); a != want {
					t.Fatalf("acks 1.999s after %d taken: %s; want %s", tc.later, a, want)
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if a, want := got.String(), fmt.Sprintf("[%d %d]", tc.atOnce, tc.later); a != want {
					t.Fatalf("acks 2s after %d taken: %s; want %s", tc.later, a, want)
				}
			})
		})
	}
}

// A delayed ack does not wait for its 2s timer when the writer sends
// anyway: it goes right behind the session's next message, or with its
// next ping (due half the 2s interval after the Welcome).
func TestDelayedAckRidesWithTheNextFrame(t *testing.T) {
	t.Parallel()
	for _, rider := range []string{"message", "ping"} {
		t.Run(rider, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var (
					mu     sync.Mutex
					frames []string
				)
				start := time.Now()
				f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
					if err := st.welcome(func(w *tetherv1.Welcome) {
						w.ReceiveWindow = &tetherv1.ReceiveWindow{Messages: 100, Bytes: 1 << 20}
						w.HeartbeatInterval = durationpb.New(2 * time.Second)
					}); err != nil {
						return err
					}
					if err := st.push(1, "x"); err != nil {
						return err
					}
					return st.serve(func(f *tetherv1.ConnectRequest) error {
						mu.Lock()
						defer mu.Unlock()
						switch {
						case f.GetAck() != nil:
							frames = append(frames, fmt.Sprintf("ack %d at %v", f.GetAck().GetSeq(), time.Since(start)))
						case f.GetMessage() != nil:
							frames = append(frames, fmt.Sprintf("message at %v", time.Since(start)))
						}
						return nil
					})
				}}
				s := flowSession(t, f)
				receiveN(t, s, 1)
				want := "ack 1 at 1s"
				if rider == "message" {
					time.Sleep(500 * time.Millisecond)
					if err := s.Send(t.Context(), client.Message{Topic: "t", Payload: []byte("m")}); err != nil {
						t.Fatal(err)
					}
					want = "message at 500ms, ack 1 at 500ms"
				} else {
					time.Sleep(time.Second)
				}
				synctest.Wait()
				mu.Lock()
				got := strings.Join(frames, ", ")
				mu.Unlock()
				if got != want {
					t.Fatalf("frames: %s; want %s", got, want)
				}
			})
		})
	}
}

// A reader that keeps up never waits for the ack timer, against a server
// that never has more than the window sent and unacked: the 20 windows
// arrive in no (fake) time at all.
func TestReaderThatKeepsUpNeverStalls(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const window, n = 16, 320
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(func(w *tetherv1.Welcome) { w.ReceiveWindow = &tetherv1.ReceiveWindow{Messages: window, Bytes: 1 << 20} }); err != nil {
				return err
			}
			acked := make(chan uint64, n)
			pushed := make(chan error, 1)
			go func() {
				var a uint64
				for seq := uint64(1); seq <= n; seq++ {
					for seq-a > window {
						a = max(a, <-acked)
					}
					if err := st.push(seq, "x"); err != nil {
						pushed <- err
						return
					}
				}
				pushed <- nil
			}()
			err := st.serve(func(f *tetherv1.ConnectRequest) error {
				if ack := f.GetAck(); ack != nil {
					acked <- ack.GetSeq()
				}
				return nil
			})
			<-pushed
			return err
		}}
		s := flowSession(t, f, client.WithReceiveWindow(window, 1<<20))
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := receiveN(t, s, n)
		if d := time.Since(start); d != 0 {
			t.Fatalf("%d messages through a window of %d took %v of fake time; want none (a stall on the ack timer)", n, window, d)
		}
		if got[n-1] != fmt.Sprintf("%d:x", n) {
			t.Fatalf("last message %s", got[n-1])
		}
	})
}

// A Gap counts its range as received: the application is told at once of
// the seqs that had not arrived (and only those), by WithOnLoss, the
// metric and the log; a message of the range that arrives after it is
// dropped, and the ack covers the range.
func TestGapReportsTheUnreceivedSeqsAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got acks
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(nil); err != nil {
				return err
			}
			for seq := range uint64(3) {
				if err := st.push(seq+1, "m"); err != nil {
					return err
				}
			}
			gap := &tetherv1.Gap{Lost: &tetherv1.SeqRange{First: 2, Last: 6}, Reason: "outbound log full (test)"}
			if err := st.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Gap{Gap: gap}}); err != nil {
				return err
			}
			if err := st.push(4, "late"); err != nil { // in flight when the server dropped it
				return err
			}
			if err := st.push(7, "m"); err != nil {
				return err
			}
			return st.serve(got.on)
		}}
		var losses recvLosses
		reg := prometheus.NewRegistry()
		logs := tethertest.NewOutput()
		s := flowSession(t, f, losses.option(), client.WithRegisterer(reg), client.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if l, want := losses.list(), `[gap s1 4-6 "outbound log full (test)"]`; l != want {
			t.Fatalf("losses before any Receive: %s; want %s", l, want)
		}
		if n := counter(t, reg, "tether_client_messages_lost_total", "cause", "gap"); n != 3 {
			t.Fatalf("tether_client_messages_lost_total{cause=gap} = %v; want 3", n)
		}
		if out := logs.String(); !strings.Contains(out, "server messages lost") || !strings.Contains(out, "first=4 last=6") {
			t.Fatalf("log: %s", out)
		}
		if got := fmt.Sprint(receiveN(t, s, 4)); got != "[1:m 2:m 3:m 7:m]" {
			t.Fatalf("received %s", got)
		}
		time.Sleep(2 * time.Second) // the ack delay
		synctest.Wait()
		if a := got.String(); a != "[7]" {
			t.Fatalf("acks %s; want [7]", a)
		}
	})
}

// A resume that reports a lost range reports to WithOnLoss only the seqs
// that had not arrived: those waiting in the session for Receive are
// still delivered. StateChange.Lost carries the server's range.
func TestResumeLossReportsOnlyTheUnreceivedSeqs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		taken := make(chan struct{})
		resumedFrom := make(chan uint64, 1)
		f := &flowFake{script: func(n int, h *tetherv1.Hello, st *flowStream) error {
			if n == 1 {
				if err := st.welcome(nil); err != nil {
					return err
				}
				for seq := range uint64(5) {
					if err := st.push(seq+1, "m"); err != nil {
						return err
					}
				}
				<-taken
				return status.Error(codes.Unavailable, "the test breaks the stream")
			}
			resumedFrom <- h.GetResume().GetLastReceivedSeq()
			if err := st.welcome(func(w *tetherv1.Welcome) {
				w.Resumed, w.ResumeStatus = true, tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP
				w.Lost, w.LastSentSeq = &tetherv1.SeqRange{First: 3, Last: 8}, 9
			}); err != nil {
				return err
			}
			if err := st.push(9, "m"); err != nil {
				return err
			}
			return st.serve(nil)
		}}
		var losses recvLosses
		states := newStateLog()
		s := flowSession(t, f, losses.option(), states.option())
		got := receiveN(t, s, 2)
		close(taken)
		if from := <-resumedFrom; from != 2 {
			t.Fatalf("resumed from %d; want 2 (what the application took)", from)
		}
		got = append(got, receiveN(t, s, 4)...)
		if fmt.Sprint(got) != "[1:m 2:m 3:m 4:m 5:m 9:m]" {
			t.Fatalf("received %v", got)
		}
		synctest.Wait()
		if l, want := losses.list(), `[resume s1 6-8 ""]`; l != want {
			t.Fatalf("losses: %s; want %s", l, want)
		}
		_, c := states.await(t, 0, time.Second, "the resume", func(c client.StateChange) bool { return c.State == client.StateConnected && c.Resumed })
		if c.Lost == nil || *c.Lost != (client.SeqRange{First: 3, Last: 8}) || c.ResumeStatus != client.ResumeResumedWithGap {
			t.Fatalf("connected: %+v", c)
		}
	})
}

// Welcome.took_over is surfaced in the StateChange of StateConnected, and
// its dropped range reported as a loss in the seqs of the session taken
// over.
func TestTakeOverIsSurfaced(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(func(w *tetherv1.Welcome) {
				w.TookOver = &tetherv1.TakeOver{SessionId: "old", Inherited: 3, Dropped: &tetherv1.SeqRange{First: 5, Last: 9}}
			}); err != nil {
				return err
			}
			return st.serve(nil)
		}}
		var losses recvLosses
		states := newStateLog()
		reg := prometheus.NewRegistry()
		s := flowSession(t, f, losses.option(), states.option(), client.WithClientID("c"), client.WithRegisterer(reg))
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, c := states.await(t, 0, time.Second, "connected", func(c client.StateChange) bool { return c.State == client.StateConnected })
		want := client.TakeOver{SessionID: "old", Inherited: 3, Dropped: &client.SeqRange{First: 5, Last: 9}}
		if c.TookOver == nil || c.TookOver.SessionID != want.SessionID || c.TookOver.Inherited != want.Inherited || *c.TookOver.Dropped != *want.Dropped {
			t.Fatalf("TookOver = %+v; want %+v", c.TookOver, want)
		}
		if l, want := losses.list(), `[take_over old 5-9 ""]`; l != want {
			t.Fatalf("losses: %s; want %s", l, want)
		}
		if n := counter(t, reg, "tether_client_messages_lost_total", "cause", "take_over"); n != 5 {
			t.Fatalf("tether_client_messages_lost_total{cause=take_over} = %v; want 5", n)
		}
	})
}

// SendWait and Request ask the server to ack at once (ack_now); Send does
// not.
func TestAckNowOnWaitedMessages(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []string
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(nil); err != nil {
				return err
			}
			return st.serve(func(f *tetherv1.ConnectRequest) error {
				m := f.GetMessage()
				if m == nil {
					return nil
				}
				mu.Lock()
				seen = append(seen, fmt.Sprintf("%s:%v", m.GetPayload(), m.GetAckNow()))
				mu.Unlock()
				if m.GetCorrelationId() != "" {
					reply := &tetherv1.ServerMessage{Seq: 1, CorrelationId: m.GetCorrelationId(), Payload: []byte("reply")}
					if err := st.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: reply}}); err != nil {
						return err
					}
				}
				return st.ack(m.GetSeq())
			})
		}}
		s := flowSession(t, f)
		ctx := t.Context()
		if err := s.Send(ctx, client.Message{Topic: "t", Payload: []byte("send")}); err != nil {
			t.Fatal(err)
		}
		if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: []byte("sendwait")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Request(ctx, client.Message{ClientID: "svc", Payload: []byte("request")}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(seen); got != "[send:false sendwait:true request:true]" {
			t.Fatalf("messages (payload:ack_now) %s", got)
		}
	})
}

// The writer paces itself to the frame rate announced in Welcome: never
// more than max_frame_burst + max_frames_per_second × t frames by time t,
// so Send's buffer fills and its policy applies (Block: Send waits)
// instead of the server having to read more slowly.
func TestWriterPacesToTheAnnouncedFrameRate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const rate, burst, n = 100, 10, 60
		var mu sync.Mutex
		var at []time.Duration
		var welcomed time.Time
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			welcomed = time.Now()
			if err := st.welcome(func(w *tetherv1.Welcome) {
				w.Limits = &tetherv1.Limits{MaxFramesPerSecond: rate, MaxFrameBurst: burst}
			}); err != nil {
				return err
			}
			return st.serve(func(f *tetherv1.ConnectRequest) error {
				mu.Lock()
				at = append(at, time.Since(welcomed))
				mu.Unlock()
				if m := f.GetMessage(); m != nil {
					return st.ack(m.GetSeq())
				}
				return nil
			})
		}}
		s := flowSession(t, f, client.WithSendBuffer(5, client.Block))
		ctx := t.Context()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range n {
			if err := s.Send(ctx, client.Message{Topic: "t", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d < (n-burst-5)*time.Second/rate {
			t.Fatalf("Send of %d messages returned after %v; a buffer of 5 under %d frames/s should have held it back", n, d, rate)
		}
		synctest.Wait()
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if len(at) < n {
			t.Fatalf("%d frames arrived; want at least %d", len(at), n)
		}
		for i, d := range at {
			if earliest := time.Duration(i+1-burst) * time.Second / rate; d < earliest-time.Millisecond {
				t.Fatalf("frame %d arrived %v after the Welcome; the rate allows it from %v", i+1, d, earliest)
			}
		}
		if last := at[n-1]; last > (n-burst)*time.Second/rate+10*time.Millisecond {
			t.Fatalf("frame %d arrived after %v; pacing should take %v", n, last, (n-burst)*time.Second/rate)
		}
	})
}

// goBackN is a fake's side of a refused client message: it refuses the
// messages refuse says no to with RESOURCE_EXHAUSTED, drops what follows
// until the refused seq comes again, and acks the rest at once, listing
// them in handled.
type goBackN struct {
	refuse func(m *tetherv1.ClientMessage) bool

	mu       sync.Mutex
	waitFor  uint64 // a refused seq: drop everything until it comes again
	handled  []string
	refusals int
}

func (g *goBackN) on(st *flowStream) func(f *tetherv1.ConnectRequest) error {
	return func(f *tetherv1.ConnectRequest) error {
		m := f.GetMessage()
		if m == nil {
			return nil
		}
		g.mu.Lock()
		if g.waitFor != 0 && m.GetSeq() != g.waitFor {
			g.mu.Unlock()
			return nil // dropped unread: after a refused one
		}
		g.waitFor = 0
		if g.refuse(m) {
			g.waitFor = m.GetSeq()
			g.refusals++
			g.mu.Unlock()
			e := &tetherv1.Error{Code: uint32(codes.ResourceExhausted), Seq: m.GetSeq(),
				Message: "the target's outbound log is full (Welcome.limits.max_outbound_queue 4096): retry later"}
			return st.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Error{Error: e}})
		}
		g.handled = append(g.handled, fmt.Sprintf("%d:%s", m.GetSeq(), m.GetPayload()))
		g.mu.Unlock()
		return st.ack(m.GetSeq())
	}
}

func (g *goBackN) list() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.handled...)
}

// SendWait and Request learn at once that their message's target is full
// (RESOURCE_EXHAUSTED): the message is withdrawn, the messages after it
// take its seq, and the session goes on.
func TestWaitedMessageRefusedAsFullIsReportedAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := &goBackN{refuse: func(m *tetherv1.ClientMessage) bool { return string(m.GetPayload()) == "full" }}
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(nil); err != nil {
				return err
			}
			return st.serve(g.on(st))
		}}
		var reported []string
		s := flowSession(t, f, client.WithOnSendError(func(m client.Message, err error) {
			reported = append(reported, fmt.Sprintf("%s:%s", m.Payload, client.CodeOf(err)))
		}))
		ctx := t.Context()
		if err := s.SendWait(ctx, client.Message{ClientID: "b", Payload: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := s.SendWait(ctx, client.Message{ClientID: "b", Payload: []byte("full")})
		var se *client.SendError
		if !errors.As(err, &se) || client.CodeOf(err) != codes.ResourceExhausted || status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("SendWait to a full target = %v; want a *SendError with RESOURCE_EXHAUSTED", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("SendWait returned after %v; want at once", d)
		}
		_, err = s.Request(ctx, client.Message{ClientID: "b", Payload: []byte("full")})
		if !errors.As(err, &se) || client.CodeOf(err) != codes.ResourceExhausted {
			t.Fatalf("Request to a full target = %v; want a *SendError with RESOURCE_EXHAUSTED", err)
		}
		if err := s.SendWait(ctx, client.Message{ClientID: "b", Payload: []byte("b")}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(g.list()); got != "[1:a 2:b]" {
			t.Fatalf("handled %s; want [1:a 2:b] (the refused ones withdrawn)", got)
		}
		synctest.Wait()
		if got := fmt.Sprint(reported); got != "[full:ResourceExhausted full:ResourceExhausted]" {
			t.Fatalf("WithOnSendError saw %s", got)
		}
	})
}

// Send keeps a message refused for a full target and re-sends it: a
// consumer that stops reading for 5s, then goes on, costs Send nothing
// under the default SendRetry: every message is handled, once, in order.
func TestSendOutlastsAConsumerStoppedForFiveSeconds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var full time.Time // when the target filled up: the first refusal (guarded by g.mu)
		g := &goBackN{refuse: func(*tetherv1.ClientMessage) bool {
			if full.IsZero() {
				full = time.Now()
			}
			return time.Since(full) < 5*time.Second
		}}
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(nil); err != nil {
				return err
			}
			return st.serve(g.on(st))
		}}
		var reported []string
		s := flowSession(t, f, client.WithOnSendError(func(m client.Message, err error) {
			reported = append(reported, fmt.Sprintf("%s: %v", m.Payload, err))
		}))
		ctx := t.Context()
		const n = 50
		var want []string
		for i := range n {
			if err := s.Send(ctx, client.Message{ClientID: "b", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%d:m%d", i+1, i))
		}
		for i := 0; len(g.list()) < n && i < 600; i++ { // a minute of fake time at most
			time.Sleep(100 * time.Millisecond)
		}
		if got := fmt.Sprint(g.list()); got != fmt.Sprint(want) {
			t.Fatalf("handled %s; want %v", got, want)
		}
		g.mu.Lock()
		took, refusals := time.Since(full), g.refusals
		g.mu.Unlock()
		// The refusal backoff is capped at 2s: the session tries again
		// within that of the consumer going on.
		if took > 7*time.Second+100*time.Millisecond || refusals < 2 {
			t.Fatalf("all handled %v after the target filled up, after %d refusals; want within 7s, after several", took, refusals)
		}
		synctest.Wait()
		if len(reported) > 0 {
			t.Fatalf("WithOnSendError saw %v", reported)
		}
	})
}

// firstHello connects a session made with opts to a fake server, in the
// bubble, and returns the Hello it sent.
func firstHello(t *testing.T, opts ...client.Option) *tetherv1.Hello {
	t.Helper()
	hellos := make(chan *tetherv1.Hello, 1)
	f := &flowFake{script: func(_ int, h *tetherv1.Hello, st *flowStream) error {
		hellos <- h
		if err := st.welcome(nil); err != nil {
			return err
		}
		return st.serve(nil)
	}}
	s := flowSession(t, f, opts...)
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return <-hellos
}

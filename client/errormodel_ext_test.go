package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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

// These tests drive the SDK against a scripted TetherService (fakeTether)
// inside a synctest bubble: each stream's fate is chosen by the test, so
// the SDK's side of the error model in tether_service.proto is checked
// exactly, whatever the real server does.

// fakeTether implements the generated TetherService. stream n (from 1)
// runs script(n, stream).
type fakeTether struct {
	tetherv1.UnimplementedTetherServiceServer
	script func(n int, st tetherv1.TetherService_ConnectServer) error

	mu    sync.Mutex
	count int
}

func (f *fakeTether) Connect(st tetherv1.TetherService_ConnectServer) error {
	f.mu.Lock()
	f.count++
	n := f.count
	f.mu.Unlock()
	if _, err := st.Recv(); err != nil { // Hello
		return err
	}
	return f.script(n, st)
}

// streams is how many Connect streams the fake has seen.
func (f *fakeTether) streams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// fakeSession serves f on bufconn in the bubble and returns a session
// dialing it, with a fast backoff (Cap 50ms) that would make a reconnect
// loop plain.
func fakeSession(t *testing.T, f *fakeTether, opts ...client.Option) (*client.Session, *stateLog) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	tetherv1.RegisterTetherServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	log := newStateLog()
	s, err := client.New(append([]client.Option{client.WithAddrs("passthrough:///bufnet"),
		client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))),
		client.WithBackoff(backoff.Config{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond, Multiplier: 2, ResetAfter: time.Second}),
		log.option()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		gs.Stop()
	})
	return s, log
}

// welcome is the Welcome the fake sends: a fresh session on the first
// stream, a resumed one later.
func welcome(n int, limits *tetherv1.Limits) *tetherv1.ConnectResponse {
	w := &tetherv1.Welcome{SessionId: "s1", ResumeToken: "tok", ServerId: "fake",
		HeartbeatInterval: durationpb.New(15 * time.Second), HeartbeatMisses: 3, Limits: limits,
		ResumeStatus: tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED}
	if n > 1 {
		w.Resumed, w.ResumeStatus = true, tetherv1.ResumeStatus_RESUME_STATUS_RESUMED
	}
	return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Welcome{Welcome: w}}
}

// frameStream is the server side of a session stream, as the fake servers
// read and write it.
type frameStream interface {
	Recv() (*tetherv1.ConnectRequest, error)
	Send(*tetherv1.ConnectResponse) error
}

// serveFrames answers pings until the stream ends, handing every other
// frame to on (which may be nil).
func serveFrames(st frameStream, on func(*tetherv1.ConnectRequest) error) error {
	for {
		f, err := st.Recv()
		if err != nil {
			return err
		}
		if p := f.GetPing(); p != nil {
			if err := st.Send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{Id: p.GetId(), SentAt: p.GetSentAt()}}}); err != nil {
				return err
			}
			continue
		}
		if on != nil {
			if err := on(f); err != nil {
				return err
			}
		}
	}
}

// A terminal code ends the session at once with a typed error, on the
// first stream: no reconnect loop (before the error model, a client
// refused by authorization reconnected 73 times in 2s with this backoff).
func TestTerminalCodeEndsTheSessionAtOnce(t *testing.T) {
	t.Parallel()
	for _, code := range []codes.Code{codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.Aborted, codes.Unimplemented, codes.FailedPrecondition} {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := &fakeTether{script: func(int, tetherv1.TetherService_ConnectServer) error {
					return status.Error(code, "refused by the test")
				}}
				s, log := fakeSession(t, f, client.WithClientID("c"))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // fake time
				defer cancel()
				err := s.Connect(ctx)
				if !errors.Is(err, client.ErrClosed) {
					t.Fatalf("Connect = %v after %d attempts, want ErrClosed", err, f.streams())
				}
				var e *client.Error
				if !errors.As(err, &e) || e.Code() != code || !e.Terminal() || e.Message() != "refused by the test" || e.GoAway() != nil {
					t.Fatalf("Connect = %v; want a terminal *client.Error with %v", err, code)
				}
				if client.CodeOf(err) != code || status.Code(err) != code || !client.IsTerminal(err) {
					t.Fatalf("CodeOf = %v, status.Code = %v, IsTerminal = %v", client.CodeOf(err), status.Code(err), client.IsTerminal(err))
				}
				time.Sleep(time.Minute) // fake time: a reconnect loop would make hundreds of attempts
				synctest.Wait()
				if n := f.streams(); n != 1 {
					t.Fatalf("%d attempts, want 1; states: %s", n, log)
				}
				if st := s.State(); st != client.StateClosed {
					t.Fatalf("state %v", st)
				}
				if err := s.Send(context.Background(), client.Message{Topic: "t"}); client.CodeOf(err) != code || !errors.Is(err, client.ErrClosed) {
					t.Fatalf("Send after the end = %v", err)
				}
			})
		})
	}
}

// A retryable code reconnects (with backoff) and resumes.
func TestRetryableCodeReconnects(t *testing.T) {
	t.Parallel()
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.DeadlineExceeded, codes.Unknown} {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
					if err := st.Send(welcome(n, nil)); err != nil {
						return err
					}
					if n == 1 {
						return status.Error(code, "try again")
					}
					return serveFrames(st, nil)
				}}
				s, log := fakeSession(t, f, client.WithClientID("c"))
				if err := s.Connect(context.Background()); err != nil {
					t.Fatal(err)
				}
				i, c := log.await(t, 0, time.Minute, "reconnecting", isState(client.StateReconnecting))
				var e *client.Error
				if !errors.As(c.Err, &e) || e.Code() != code || e.Terminal() {
					t.Fatalf("reconnecting with %v; want a retryable *client.Error with %v", c.Err, code)
				}
				_, back := log.await(t, i+1, time.Minute, "connected", isState(client.StateConnected))
				if !back.Resumed || back.ResumeStatus != client.ResumeResumed {
					t.Fatalf("back with %+v", back)
				}
			})
		})
	}
}

// UNAUTHENTICATED after Welcome means the credentials expired: the session
// reconnects once with fresh ones; refused again before Welcome, it ends.
func TestExpiredCredentialsReconnectOnce(t *testing.T) {
	t.Parallel()
	for _, refresh := range []bool{false, true} {
		name := map[bool]string{false: "refused again: the session ends", true: "accepted: the session resumes"}[refresh]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
					switch {
					case n == 1:
						if err := st.Send(welcome(n, nil)); err != nil {
							return err
						}
						return status.Error(codes.Unauthenticated, "credentials expired")
					case n == 2 && refresh:
						if err := st.Send(welcome(n, nil)); err != nil {
							return err
						}
						return serveFrames(st, nil)
					}
					return status.Error(codes.Unauthenticated, "credentials refused")
				}}
				s, log := fakeSession(t, f, client.WithClientID("c"))
				if err := s.Connect(context.Background()); err != nil {
					t.Fatal(err)
				}
				_, c := log.await(t, 0, time.Minute, "reconnecting", isState(client.StateReconnecting))
				if client.CodeOf(c.Err) != codes.Unauthenticated || client.IsTerminal(c.Err) {
					t.Fatalf("reconnecting with %v", c.Err)
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				if n := f.streams(); n != 2 {
					t.Fatalf("%d streams, want 2; states: %s", n, log)
				}
				if !refresh {
					if st := s.Stats(); st.State != client.StateClosed || client.CodeOf(st.LastError) != codes.Unauthenticated {
						t.Fatalf("stats %+v; states: %s", st, log)
					}
					_, end := log.await(t, 0, time.Second, "closed", isState(client.StateClosed))
					if !client.IsTerminal(end.Err) || client.CodeOf(end.Err) != codes.Unauthenticated {
						t.Fatalf("closed with %v", end.Err)
					}
					return
				}
				if st := s.State(); st != client.StateConnected {
					t.Fatalf("state %v; states: %s", st, log)
				}
			})
		})
	}
}

// A GoAway decides by its reason: HEARTBEAT_TIMEOUT (the server heard
// nothing) reconnects and resumes, TAKEN_OVER ends the session, whatever
// code the stream then ends with.
func TestGoAwayReasonDecides(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason   tetherv1.GoAwayReason
		code     codes.Code
		terminal bool
	}{
		{tetherv1.GoAwayReason_GO_AWAY_REASON_HEARTBEAT_TIMEOUT, codes.DeadlineExceeded, false},
		{tetherv1.GoAwayReason_GO_AWAY_REASON_DRAIN, codes.OK, false},
		{tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER, codes.Aborted, true},
		{tetherv1.GoAwayReason_GO_AWAY_REASON_CLOSED_BY_ADMIN, codes.OK, true},
	} {
		t.Run(tc.reason.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
					if err := st.Send(welcome(n, nil)); err != nil {
						return err
					}
					if n > 1 {
						return serveFrames(st, nil)
					}
					if err := st.Send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_GoAway{GoAway: &tetherv1.GoAway{Reason: tc.reason, Message: "test"}}}); err != nil {
						return err
					}
					return status.Error(tc.code, "")
				}}
				s, log := fakeSession(t, f, client.WithClientID("c"))
				if err := s.Connect(context.Background()); err != nil {
					t.Fatal(err)
				}
				want := client.StateReconnecting
				if tc.terminal {
					want = client.StateClosed
				}
				_, c := log.await(t, 0, time.Minute, want.String(), isState(want))
				var e *client.Error
				var ga *client.GoAwayError
				if !errors.As(c.Err, &e) || e.Terminal() != tc.terminal || e.Code() != tc.code || e.GoAway() == nil ||
					!errors.As(c.Err, &ga) || ga.Reason != client.GoAwayReason(tc.reason) {
					t.Fatalf("%v with %v; want a *client.Error (terminal %v, %v) wrapping go_away %v", want, c.Err, tc.terminal, tc.code, tc.reason)
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				if n, st := f.streams(), s.State(); tc.terminal && (n != 1 || st != client.StateClosed) || !tc.terminal && (n != 2 || st != client.StateConnected) {
					t.Fatalf("%d streams, state %v; states: %s", n, st, log)
				}
			})
		})
	}
}

// Subscribe sends a request_id and returns the server's Error carrying it
// (with the topic it names) as a *client.TopicError; a refused topic is
// not kept for the next Hello. An accepted one returns nil once the
// server has handled it.
func TestSubscribeReturnsTheServersRefusal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var ids []uint64
		f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
			if err := st.Send(welcome(n, nil)); err != nil {
				return err
			}
			return serveFrames(st, func(f *tetherv1.ConnectRequest) error {
				sub := f.GetSubscribe()
				if sub == nil {
					return nil
				}
				mu.Lock()
				ids = append(ids, sub.GetRequestId())
				mu.Unlock()
				for _, topic := range sub.GetTopics() {
					if topic == "secret" {
						return st.Send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Error{Error: &tetherv1.Error{
							Code: uint32(codes.PermissionDenied), Message: "not yours", RequestId: sub.GetRequestId(), Topic: topic}}})
					}
				}
				return nil
			})
		}}
		s, _ := fakeSession(t, f, client.WithClientID("c"))
		ctx := context.Background()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Subscribe(ctx, "news"); err != nil {
			t.Fatalf("Subscribe(news) = %v", err)
		}
		err := s.Subscribe(ctx, "secret")
		var te *client.TopicError
		if !errors.As(err, &te) || te.Topic != "secret" || client.CodeOf(err) != codes.PermissionDenied {
			t.Fatalf("Subscribe(secret) = %v; want a *TopicError for secret with PERMISSION_DENIED", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(ids) != 2 || ids[0] == 0 || ids[1] == ids[0] {
			t.Fatalf("request ids %v; want two distinct, nonzero", ids)
		}
	})
}

// Send refuses a message whose frame would exceed
// Welcome.limits.max_frame_bytes (the server would end the stream), as it
// does a payload above max_message_bytes; one queued before the limits
// were known fails with ErrTooLarge instead of being sent.
func TestSendRespectsTheAnnouncedLimits(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
			if err := st.Send(welcome(n, &tetherv1.Limits{MaxMessageBytes: 1000, MaxFrameBytes: 300})); err != nil {
				return err
			}
			return serveFrames(st, nil)
		}}
		s, _ := fakeSession(t, f, client.WithClientID("c"))
		ctx := context.Background()
		early := make(chan error, 1) // sent before the limits were known
		go func() { early <- s.SendWait(ctx, client.Message{Topic: "t", Payload: make([]byte, 2000)}) }()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-early; !errors.Is(err, client.ErrTooLarge) {
			t.Fatalf("SendWait before the Welcome = %v, want ErrTooLarge once the limits are known", err)
		}
		for _, tc := range []struct {
			payload, header int
			ok              bool
		}{{100, 0, true}, {2000, 0, false}, {500, 0, false}, {100, 400, false}} {
			m := client.Message{Topic: "t", Payload: make([]byte, tc.payload)}
			if tc.header > 0 {
				m.Headers = map[string]string{"h": string(make([]byte, tc.header))}
			}
			err := s.Send(ctx, m)
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, client.ErrTooLarge) {
				t.Errorf("payload %d, header %d: Send = %v", tc.payload, tc.header, err)
			}
		}
	})
}

// The server coalesces pings into a pong it has not written yet, which
// then goes ahead of frames queued after it: with a heartbeat ping
// unanswered, the pong to the ping Subscribe sends after its request
// arrives before the server's Error for it. Subscribe still returns the
// refusal (it pings once more after such a pong).
func TestSubscribeRefusalBehindACoalescedPong(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		send := func(st tetherv1.TetherService_ConnectServer, r *tetherv1.ConnectResponse) {
			if err := st.Send(r); err != nil {
				t.Error(err)
			}
		}
		f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
			send(st, welcome(n, nil))
			var pending *tetherv1.Pong // the unwritten pong, as the server keeps it
			var held *tetherv1.ConnectResponse
			for {
				f, err := st.Recv()
				if err != nil {
					return err
				}
				switch {
				case f.GetPing() != nil && f.GetPing().GetId() == 1:
					pending = &tetherv1.Pong{Id: 1} // held back: the writer is busy
				case f.GetPing() != nil && pending != nil:
					pending.Id = f.GetPing().GetId() // coalesced, ahead of the Error
					send(st, &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: pending}})
					pending = nil
					send(st, held)
				case f.GetPing() != nil:
					send(st, &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{Id: f.GetPing().GetId()}}})
				case f.GetSubscribe() != nil:
					held = &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Error{Error: &tetherv1.Error{
						Code: uint32(codes.PermissionDenied), Message: "not yours", RequestId: f.GetSubscribe().GetRequestId(), Topic: "secret"}}}
				}
			}
		}}
		s, _ := fakeSession(t, f, client.WithClientID("c"))
		ctx := context.Background()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // the first heartbeat ping goes 7.5s after Welcome, and stays unanswered
		synctest.Wait()
		if err := s.Subscribe(ctx, "secret"); client.CodeOf(err) != codes.PermissionDenied {
			t.Fatalf("Subscribe(secret) = %v; want the server's PERMISSION_DENIED", err)
		}
	})
}

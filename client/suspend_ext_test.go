package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// gaugeValue reads a tether_sessions{state} gauge from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, state string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tether_sessions" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no tether_sessions{state=%q}", state)
	return 0
}

// TestSuspendQueuesAndResumeReplays suspends a session, in fake time, for
// half an hour (far beyond the 10s resume window): the server keeps it,
// shows it suspended, and queues what is published to it; the session
// buffers what it sends. Resume reconnects at once and nothing is lost
// either way, in order.
func TestSuspendQueuesAndResumeReplays(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		srv, lis := tethertest.ServeBufconn(t, server.WithResumeWindow(10*time.Second), server.WithMaxSuspendWindow(time.Hour), server.WithRegisterer(reg))
		rec := &bbStates{}
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))),
			client.WithClientID("phone"), client.WithTopics("echo"), client.WithOnState(rec.add))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		ctx := t.Context()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		id := s.Stats().SessionID
		cc, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(tethertest.Dialer(lis)), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		admin := tetherv1.NewAdminServiceClient(cc)

		s.Suspend()
		for s.State() != client.StateSuspended {
			time.Sleep(10 * time.Millisecond)
		}
		synctest.Wait()
		info, err := admin.GetSession(ctx, &tetherv1.GetSessionRequest{SessionId: id})
		if err != nil || info.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_SUSPENDED {
			t.Fatalf("admin sees %v, %v; want SUSPENDED", info.GetSession().GetState(), err)
		}
		if got := gaugeValue(t, reg, "suspended"); got != 1 {
			t.Fatalf("tether_sessions{state=suspended} = %v; want 1", got)
		}
		const n = 50
		for i := range n {
			if _, err := srv.Publish(ctx, broker.Client("phone"), fmt.Appendf(nil, "push %d", i), ""); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(ctx, client.Message{Topic: "echo", Payload: fmt.Appendf(nil, "sent %d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(30 * time.Minute) // no heartbeat, no reconnect
		if st := s.Stats(); st.State != client.StateSuspended || st.Queued != n {
			t.Fatalf("after 30m suspended: %+v; want still suspended, %d queued", st, n)
		}
		resumed := time.Now()
		s.Resume()
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		took := time.Since(resumed)
		synctest.Wait() // the state callbacks
		last := rec.list()[len(rec.list())-1]
		if last.State != client.StateConnected || !last.Resumed || took > time.Second {
			t.Fatalf("Resume: %+v, %v after; want the session resumed at once", last, took)
		}
		pushes, echoes := 0, 0
		for pushes+echoes < 2*n {
			m, err := s.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch want := ""; {
			case m.Topic == "echo":
				want = fmt.Sprintf("sent %d", echoes)
				echoes++
				if string(m.Payload) != want {
					t.Fatalf("echo %q; want %q", m.Payload, want)
				}
			default:
				want = fmt.Sprintf("push %d", pushes)
				pushes++
				if string(m.Payload) != want {
					t.Fatalf("push %q; want %q", m.Payload, want)
				}
			}
		}
		synctest.Wait()
		info, err = admin.GetSession(ctx, &tetherv1.GetSessionRequest{SessionId: id})
		if err != nil || info.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_CONNECTED {
			t.Fatalf("admin sees %v, %v after Resume; want CONNECTED", info.GetSession().GetState(), err)
		}
		if got := gaugeValue(t, reg, "suspended"); got != 0 {
			t.Fatalf("tether_sessions{state=suspended} = %v after Resume; want 0", got)
		}
	})
}

// TestSuspendWindowEnds: a suspended session that never resumes expires
// at the end of the suspend window it asked for (the server's maximum,
// here 1m), not before.
func TestSuspendWindowEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, lis := tethertest.ServeBufconn(t, server.WithResumeWindow(10*time.Second), server.WithMaxSuspendWindow(time.Minute))
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))), client.WithClientID("phone"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.Suspend()
		time.Sleep(59 * time.Second)
		s.Resume()
		if err := s.Connect(t.Context()); err != nil || s.Stats().ResumeStatus != client.ResumeStatus(tetherv1.ResumeStatus_RESUME_STATUS_RESUMED) {
			t.Fatalf("resume after 59s of a 1m window: %v %+v", err, s.Stats())
		}
		s.Suspend()
		time.Sleep(61 * time.Second)
		s.Resume()
		if err := s.Connect(t.Context()); err != nil || s.Stats().ResumeStatus != client.ResumeStatus(tetherv1.ResumeStatus_RESUME_STATUS_EXPIRED) {
			t.Fatalf("resume after 61s of a 1m window: %v %+v; want EXPIRED", err, s.Stats())
		}
	})
}

// TestReconnectEndsSuspension: a network change (SetNetwork, Reconnect)
// brings a suspended session back, as Resume does.
func TestReconnectEndsSuspension(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, lis := tethertest.ServeBufconn(t)
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"), client.WithDialOptions(grpc.WithContextDialer(tethertest.Dialer(lis))), client.WithClientID("phone"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.Suspend()
		for <-s.States() != client.StateSuspended {
		}
		s.SetNetwork("lte")
		if err := s.Connect(t.Context()); err != nil || s.State() != client.StateConnected || s.Stats().ResumeStatus != client.ResumeStatus(tetherv1.ResumeStatus_RESUME_STATUS_RESUMED) {
			t.Fatalf("after SetNetwork: %v %+v", err, s.Stats())
		}
	})
}

// TestOldServerGetsNeitherSuspendNorSetHeartbeat: a server that offers
// nothing in Welcome.liveness (an older one) is never sent a Suspend or a
// SetHeartbeat frame, which it would answer with INVALID_ARGUMENT: Suspend
// only closes the stream, and the adaptive heartbeat keeps the granted
// interval.
func TestOldServerGetsNeitherSuspendNorSetHeartbeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var unknown []string
		f := &fakeTether{script: func(n int, st tetherv1.TetherService_ConnectServer) error {
			limits := &tetherv1.Limits{MinHeartbeatInterval: durationpb.New(10 * time.Second), MaxHeartbeatInterval: durationpb.New(5 * time.Minute)}
			if err := st.Send(welcome(n, limits)); err != nil {
				return err
			}
			return serveFrames(st, func(f *tetherv1.ConnectRequest) error {
				if f.GetSuspend() != nil || f.GetSetHeartbeat() != nil {
					mu.Lock()
					unknown = append(unknown, fmt.Sprintf("%T", f.GetFrame()))
					mu.Unlock()
					return status.Error(codes.InvalidArgument, "empty or unknown frame")
				}
				return nil
			})
		}}
		s, _ := fakeSession(t, f, client.WithClientID("phone"), client.WithProfile(profile.Mobile()))
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute) // 40 heartbeats at 15s: an adaptive search would have moved
		if st := s.Stats(); st.Heartbeat != 15*time.Second || st.Reconnects != 0 {
			t.Fatalf("against an old server: %+v; want the granted 15s, no reconnect", st)
		}
		s.Suspend()
		for <-s.States() != client.StateSuspended {
		}
		synctest.Wait()
		s.Resume()
		if err := s.Connect(t.Context()); err != nil || f.streams() != 2 {
			t.Fatalf("Resume: %v after %d streams", err, f.streams())
		}
		mu.Lock()
		defer mu.Unlock()
		if len(unknown) != 0 {
			t.Fatalf("the old server was sent %v", unknown)
		}
	})
}

package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// Tests of issue 19's liveness: the RTT-derived dead-after, SetHeartbeat
// and Suspend, from a hand-driven client, in fake time.

func pingFrame(id uint64, rtt time.Duration) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: id, SentAt: timestamppb.Now(), Rtt: durationpbNew(rtt)}}}
}

// TestWelcomeOffersLiveness: Welcome.liveness says what the server takes
// and the RTT-derived timeout's numbers, from the profile.
func TestWelcomeOffersLiveness(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t, server.WithProfile(profile.Datacenter()), server.WithMaxSuspendWindow(20*time.Minute))
		_, w := b.connect(t, &tetherv1.Hello{})
		l := w.GetLiveness()
		if !l.GetSetHeartbeat() || !l.GetSuspend() || l.GetMaxSuspendWindow().AsDuration() != 20*time.Minute ||
			l.GetRttTimeout().GetFloor().AsDuration() != time.Second || l.GetRttTimeout().GetMultiplier() != 3 {
			t.Fatalf("liveness %v", l)
		}
		if w.GetDeadAfter().AsDuration() != 3500*time.Millisecond {
			t.Fatalf("dead_after %v; want the fixed bound 3.5s", w.GetDeadAfter().AsDuration())
		}
	})
}

// TestRTTDerivedDeadAfter: once the client reported a round trip
// (Ping.rtt), the server declares it dead after interval + floor of
// silence (default profile: 15s + 5s), not interval × misses + grace
// (50s); a client with long, varying round trips gets more, never more
// than 50s.
func TestRTTDerivedDeadAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rtts []time.Duration
		want time.Duration
	}{
		{"no sample: fixed", nil, 50 * time.Second},
		{"loopback", []time.Duration{time.Millisecond, time.Millisecond}, 20 * time.Second},
		// srtt 1.125s, rttvar 0.625s: 3 × (1.125 + 2.5) = 10.875s past 15s.
		{"long and varying", []time.Duration{time.Second, 2 * time.Second}, 25*time.Second + 875*time.Millisecond},
		{"beyond the bound", []time.Duration{20 * time.Second}, 50 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := startBubbleNode(t)
				c, _ := b.connect(t, &tetherv1.Hello{HeartbeatInterval: durationpbNew(15 * time.Second)})
				for i, r := range tc.rtts {
					c.send(t, pingFrame(uint64(i+1), r))
				}
				synctest.Wait()
				last := time.Now()
				<-c.ended
				if st := status.Convert(c.endErr); st.Code() != codes.DeadlineExceeded {
					t.Fatalf("ended with %v", st)
				}
				if got := c.endAt.Sub(last); got != tc.want {
					t.Fatalf("declared dead after %v of silence; want %v", got, tc.want)
				}
			})
		})
	}
}

// TestSetHeartbeat: the server's dead-after and pings follow the interval
// the client announces, clamped into the bounds; a bad one ends the
// stream with INVALID_ARGUMENT.
func TestSetHeartbeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t, server.WithProfile(profile.Mobile()))
		c, w := b.connect(t, &tetherv1.Hello{})
		if w.GetHeartbeatInterval().AsDuration() != 25*time.Second {
			t.Fatalf("granted %v", w.GetHeartbeatInterval().AsDuration())
		}
		c.send(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_SetHeartbeat{SetHeartbeat: &tetherv1.SetHeartbeat{Interval: durationpbNew(110 * time.Second)}}})
		synctest.Wait()
		at := time.Now()
		// The server pings once write-idle for the new interval, not 25s.
		time.Sleep(109 * time.Second)
		synctest.Wait()
		if ps := pings(c.drain()); len(ps) != 0 {
			t.Fatalf("pinged at %v after SetHeartbeat 110s", ps[0].Sub(at))
		}
		r, err := tetherv1.NewAdminServiceClient(b.cc).GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		if err != nil || r.GetSession().GetHeartbeatInterval().AsDuration() != 110*time.Second {
			t.Fatalf("admin: %v %v; want the 110s interval", r.GetSession().GetHeartbeatInterval(), err)
		}
		// The client answers nothing: without an RTT sample the fixed
		// rule applies to the new interval, 110s × 3 + 10s.
		<-c.ended
		if got := c.endAt.Sub(at); got != 340*time.Second {
			t.Fatalf("declared dead after %v; want 340s", got)
		}

		c2, _ := b.connect(t, &tetherv1.Hello{})
		c2.send(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_SetHeartbeat{SetHeartbeat: &tetherv1.SetHeartbeat{}}})
		<-c2.ended
		if st := status.Convert(c2.endErr); st.Code() != codes.InvalidArgument || !contains(st.Message(), "set_heartbeat.interval") {
			t.Fatalf("an empty SetHeartbeat ended the stream with %v", st)
		}
	})
}

// TestSuspendFrame: Suspend ends the stream with OK, and the session waits
// for its resume beyond the resume window, shown as SUSPENDED; a resume
// clears it.
func TestSuspendFrame(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t, server.WithResumeWindow(10*time.Second), server.WithMaxSuspendWindow(time.Hour))
		c, w := b.connect(t, &tetherv1.Hello{ClientId: "phone"})
		c.send(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Suspend{Suspend: &tetherv1.Suspend{Window: durationpbNew(30 * time.Minute)}}})
		<-c.ended
		if !errors.Is(c.endErr, io.EOF) { // status OK
			t.Fatalf("Suspend ended the stream with %v; want OK", c.endErr)
		}
		admin := tetherv1.NewAdminServiceClient(b.cc)
		r, err := admin.GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		if err != nil || r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_SUSPENDED ||
			r.GetSession().GetResumeDeadline().AsTime().Sub(time.Now()) != 30*time.Minute {
			t.Fatalf("after Suspend: %v %v; want SUSPENDED until 30m from now", r.GetSession(), err)
		}
		time.Sleep(29 * time.Minute)
		c2, w2 := b.connect(t, &tetherv1.Hello{ClientId: "phone", Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w.GetResumeToken()}})
		if !w2.GetResumed() {
			t.Fatalf("resume after 29m suspended: %v", w2.GetResumeStatus())
		}
		r, err = admin.GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		if err != nil || r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_CONNECTED {
			t.Fatalf("after the resume: %v %v", r.GetSession().GetState(), err)
		}
		// A stream that ends without Suspend waits the resume window only.
		c2.cancel()
		<-c2.ended
		time.Sleep(11 * time.Second)
		_, w3 := b.connect(t, &tetherv1.Hello{ClientId: "phone", Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w2.GetResumeToken()}})
		if w3.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_EXPIRED {
			t.Fatalf("a broken stream's session after 11s: %v; want EXPIRED (the suspend window is not carried over)", w3.GetResumeStatus())
		}
		c3, _ := b.connect(t, &tetherv1.Hello{})
		c3.send(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Suspend{Suspend: &tetherv1.Suspend{Window: durationpbNew(-time.Second)}}})
		<-c3.ended
		if st := status.Convert(c3.endErr); st.Code() != codes.InvalidArgument || !contains(st.Message(), "suspend.window") {
			t.Fatalf("a negative window ended the stream with %v", st)
		}
	})
}

// TestSlowHandlingIsNotSilence: a client message whose handling takes the
// server longer than the dead-after (a slow broker, here a Handler that
// takes 5s) does not make the client dead; silence counts from the end
// of the handling.
func TestSlowHandlingIsNotSilence(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t, server.WithProfile(profile.Datacenter()), server.WithHandler(slowHandler{5 * time.Second}))
		c, _ := b.connect(t, &tetherv1.Hello{ClientId: "busy"})
		c.send(t, pingFrame(1, time.Millisecond)) // a round trip: dead after 2s of silence
		synctest.Wait()
		c.send(t, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{Seq: 1, Target: &tetherv1.ClientMessage_SessionId{SessionId: "server"}, Payload: []byte("x")}}})
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		select {
		case <-c.ended:
			t.Fatalf("the stream ended with %v while the server handled a message", c.endErr)
		default:
		}
		handled := time.Now()
		<-c.ended // the client stays silent: dead 2s after the handling ended
		if got := c.endAt.Sub(handled); got > 2*time.Second {
			t.Fatalf("declared dead %v after the handling ended; want within the 2s dead-after", got)
		}
	})
}

// slowHandler takes d to handle each message, as a slow broker would.
type slowHandler struct{ d time.Duration }

func (slowHandler) OnConnect(context.Context, *server.Session) error { return nil }

func (h slowHandler) OnMessage(context.Context, *server.Session, *server.Message) error {
	time.Sleep(h.d)
	return nil
}

func (slowHandler) OnClose(*server.Session, string) {}

package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

func (n *node) publishTo(t *testing.T, clientID string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if _, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{
			Target: &tetherv1.PublishRequest_ClientId{ClientId: clientID}, Payload: []byte(p)}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

func (n *node) state(t *testing.T, sessionID string) tetherv1.SessionState {
	t.Helper()
	r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: sessionID})
	if err != nil {
		return tetherv1.SessionState_SESSION_STATE_CLOSED
	}
	return r.GetSession().GetState()
}

func resumeHello(w *tetherv1.Welcome, last uint64) *tetherv1.Hello {
	return &tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: w.GetSessionId(), ResumeToken: w.GetResumeToken(), LastReceivedSeq: last}}
}

func TestResumeReplaysUnackedServerMessages(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		c1 := n.dial(t, "")
		w1 := c1.open(&tetherv1.Hello{ClientId: "r", Topics: []string{"t"}})
		n.publishTo(t, "r", "m1", "m2", "m3", "m4", "m5")
		for i := 1; i <= 5; i++ {
			if m := c1.message(); m.GetSeq() != uint64(i) {
				t.Fatalf("got seq %d, want %d", m.GetSeq(), i)
			}
		}
		c1.send(ack(3))
		// Break the stream mid-flow: the client vanishes with 4 and 5 unacked.
		c1.cancel()
		waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
		n.publishTo(t, "r", "m6", "m7")

		// The client had received up to 4 (its ack for 4 and 5 never left).
		c2 := n.dial(t, "")
		w2 := c2.open(resumeHello(w1, 4))
		if !w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED || w2.GetSessionId() != w1.GetSessionId() {
			t.Fatalf("resume welcome = %v", w2)
		}
		if w2.GetResumeToken() == w1.GetResumeToken() {
			t.Fatal("the resume token was not rotated")
		}
		if w2.GetLastSentSeq() != 7 {
			t.Fatalf("last_sent_seq = %d, want 7", w2.GetLastSentSeq())
		}
		for i := 5; i <= 7; i++ {
			m := c2.message()
			if m.GetSeq() != uint64(i) || string(m.GetPayload()) != fmt.Sprint("m", i) {
				t.Fatalf("replayed %v, want seq %d", m, i)
			}
		}
		c2.noFrame()
		// Subscriptions survived the resume.
		if got := w2.GetTopics(); len(got) != 1 || got[0] != "t" {
			t.Fatalf("topics after resume = %v", got)
		}
		// Once the client presented the rotated token, the old one no longer
		// works: a fresh session, and the reason.
		c3 := n.dial(t, "")
		if w3 := c3.open(resumeHello(w2, 7)); !w3.GetResumed() {
			t.Fatalf("resume with the rotated token = %v", w3)
		}
		c4 := n.dial(t, "")
		w4 := c4.open(resumeHello(w1, 7))
		if w4.GetResumed() || w4.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION || w4.GetSessionId() == w1.GetSessionId() {
			t.Fatalf("resume with a stale token = %v", w4)
		}
	})
}

func TestResumeDedupesClientResends(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		sink := n.dial(t, "")
		sink.open(&tetherv1.Hello{ClientId: "sink", Topics: []string{"in"}})
		c1 := n.dial(t, "")
		w1 := c1.open(&tetherv1.Hello{ClientId: "src"})
		for i := 1; i <= 3; i++ {
			c1.send(toTopic(uint64(i), "in", fmt.Sprint("c", i)))
		}
		for i := 1; i <= 3; i++ {
			if m := sink.message(); string(m.GetPayload()) != fmt.Sprint("c", i) {
				t.Fatalf("sink got %q", m.GetPayload())
			}
		}
		c1.cancel() // before the client saw any ack
		waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
		c2 := n.dial(t, "")
		w2 := c2.open(resumeHello(w1, 0))
		if w2.GetLastReceivedSeq() != 3 {
			t.Fatalf("welcome.last_received_seq = %d, want 3", w2.GetLastReceivedSeq())
		}
		// A careless client re-sends everything: only 4 is new.
		for i := 1; i <= 4; i++ {
			c2.send(toTopic(uint64(i), "in", fmt.Sprint("c", i)))
		}
		if m := sink.message(); string(m.GetPayload()) != "c4" {
			t.Fatalf("sink got %q after the re-send, want c4 (1–3 are duplicates)", m.GetPayload())
		}
		sink.noFrame()
		if a := c2.ackFrame(); a.GetSeq() < 3 {
			t.Fatalf("ack after re-send = %d", a.GetSeq())
		}
	})
}

func TestIdempotencyKeyAcrossSessions(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
		sink := n.dial(t, "")
		sink.open(&tetherv1.Hello{ClientId: "sink", Topics: []string{"in"}})
		msg := func(seq uint64) *tetherv1.ConnectRequest {
			return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
				Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: "in"}, Payload: []byte("order-1"), IdempotencyKey: "order-1"}}}
		}
		c1 := n.dial(t, "")
		c1.open(&tetherv1.Hello{ClientId: "src"})
		c1.send(msg(1))
		sink.message()
		// The client crashed and lost its session; a new session re-sends.
		c2 := n.dial(t, "")
		c2.open(&tetherv1.Hello{ClientId: "src"})
		c2.send(msg(1))
		if a := c2.ackFrame(); a.GetSeq() != 1 {
			t.Fatalf("the duplicate was not acked: %v", a)
		}
		sink.noFrame()
	})
}

func TestResumeRefusals(t *testing.T) {
	t.Parallel()
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		n := startNode(t)
		c := n.dial(t, "")
		w := c.open(&tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: "no-such-session", ResumeToken: "x"}})
		if w.GetResumed() || w.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION || w.GetSessionId() == "" {
			t.Fatalf("welcome = %v", w)
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			const window = 200 * time.Millisecond
			n := startNodeInBubble(t, server.WithResumeWindow(window))
			c1 := n.dial(t, "")
			w1 := c1.open(&tetherv1.Hello{ClientId: "e"})
			c1.cancel()
			// The session waits exactly the resume window, then expires.
			time.Sleep(window - time.Millisecond)
			synctest.Wait()
			if st := n.state(t, w1.GetSessionId()); st != tetherv1.SessionState_SESSION_STATE_DETACHED {
				t.Fatalf("%v after the stream broke: %v; want DETACHED until the resume window ends", window-time.Millisecond, st)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if st := n.state(t, w1.GetSessionId()); st != tetherv1.SessionState_SESSION_STATE_CLOSED {
				t.Fatalf("at the end of the resume window: %v; want CLOSED", st)
			}
			c2 := n.dial(t, "")
			w2 := c2.open(resumeHello(w1, 0))
			if w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_EXPIRED {
				t.Fatalf("welcome = %v", w2)
			}
		})
	})
	t.Run("other principal", func(t *testing.T) {
		t.Parallel()
		n := startNode(t)
		c1 := n.dial(t, "alice")
		w1 := c1.open(&tetherv1.Hello{ClientId: "shared"})
		c1.cancel()
		waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
		c2 := n.dial(t, "mallory")
		w2 := c2.open(resumeHello(w1, 0))
		if w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_PRINCIPAL_MISMATCH || w2.GetSessionId() == w1.GetSessionId() {
			t.Fatalf("welcome = %v", w2)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		n := startNode(t)
		c1 := n.dial(t, "")
		w1 := c1.open(&tetherv1.Hello{})
		c1.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "done"}}})
		c1.expectEnd(codes.OK, "")
		c2 := n.dial(t, "")
		w2 := c2.open(resumeHello(w1, 0))
		if w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_CLOSED {
			t.Fatalf("welcome = %v", w2)
		}
	})
	t.Run("seq mismatch", func(t *testing.T) {
		t.Parallel()
		n := startNode(t)
		c1 := n.dial(t, "")
		w1 := c1.open(&tetherv1.Hello{})
		c1.cancel()
		waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
		c2 := n.dial(t, "")
		w2 := c2.open(resumeHello(w1, 99))
		if w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_SEQ_MISMATCH {
			t.Fatalf("welcome = %v", w2)
		}
	})
}

func TestResumeReportsLostRange(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithMaxOutboundQueue(4), server.WithOverflowPolicy(server.OverflowDropOldest))
	c1 := n.dial(t, "")
	w1 := c1.open(&tetherv1.Hello{ClientId: "g"})
	c1.cancel()
	waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
	for i := 1; i <= 10; i++ {
		n.publishTo(t, "g", fmt.Sprint("m", i))
	}
	c2 := n.dial(t, "")
	w2 := c2.open(resumeHello(w1, 0))
	if !w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP ||
		w2.GetLost().GetFirst() != 1 || w2.GetLost().GetLast() != 6 {
		t.Fatalf("welcome = %v; want resumed with lost 1..6", w2)
	}
	for i := 7; i <= 10; i++ {
		if m := c2.message(); m.GetSeq() != uint64(i) {
			t.Fatalf("got seq %d, want %d", m.GetSeq(), i)
		}
	}
}

func TestTakeover(t *testing.T) {
	t.Parallel()
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		n := startNode(t)
		c1 := n.dial(t, "")
		w1 := c1.open(&tetherv1.Hello{ClientId: "x"})
		c2 := n.dial(t, "")
		w2 := c2.open(resumeHello(w1, 0))
		if !w2.GetResumed() {
			t.Fatalf("takeover resume = %v", w2)
		}
		ga := c1.next().GetGoAway()
		if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER {
			t.Fatalf("old stream got %v, want go_away TAKEN_OVER", ga)
		}
		c1.expectEnd(codes.Aborted, "taken over")
		n.publishTo(t, "x", "after")
		if m := c2.message(); string(m.GetPayload()) != "after" {
			t.Fatalf("new stream got %v", m)
		}
	})
	t.Run("client id", func(t *testing.T) {
		t.Parallel()
		n := startNode(t)
		c1 := n.dial(t, "")
		w1 := c1.open(&tetherv1.Hello{ClientId: "x"})
		c2 := n.dial(t, "")
		w2 := c2.open(&tetherv1.Hello{ClientId: "x"})
		if w2.GetSessionId() == w1.GetSessionId() {
			t.Fatal("a fresh hello reused the session")
		}
		if ga := c1.next().GetGoAway(); ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER {
			t.Fatalf("old session got %v", ga)
		}
		c1.expectEnd(codes.Aborted, "taken over")
		if s := n.state(t, w1.GetSessionId()); s != tetherv1.SessionState_SESSION_STATE_CLOSED {
			t.Fatalf("old session state %v", s)
		}
		n.publishTo(t, "x", "newest")
		if m := c2.message(); string(m.GetPayload()) != "newest" {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("multiple allowed", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, server.WithMultipleSessionsPerClient())
		c1 := n.dial(t, "")
		c1.open(&tetherv1.Hello{ClientId: "x"})
		c2 := n.dial(t, "")
		c2.open(&tetherv1.Hello{ClientId: "x"})
		n.publishTo(t, "x", "both")
		c1.message()
		c2.message()
	})
}

func TestCloseSessionByAdmin(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "k"})
	if _, err := n.admin().CloseSession(context.Background(), &tetherv1.CloseSessionRequest{SessionId: w.GetSessionId(), Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	ga := c.next().GetGoAway()
	if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_CLOSED_BY_ADMIN || !contains(ga.GetMessage(), "maintenance") {
		t.Fatalf("go_away = %v", ga)
	}
	c.expectEnd(codes.OK, "")
	if r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()}); r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("GetSession after close: %v %v", r, err)
	}
}

// A resume may ask for another heartbeat interval (a client that moved to a
// network with a shorter NAT timer); without one it keeps its own.
func TestResumeMayChangeTheHeartbeat(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c1 := n.dial(t, "")
	w1 := c1.open(&tetherv1.Hello{ClientId: "hb", HeartbeatInterval: durationpbNew(time.Minute)})
	c1.cancel()
	waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
	h := resumeHello(w1, 0)
	h.HeartbeatInterval = durationpbNew(20 * time.Second)
	c2 := n.dial(t, "")
	w2 := c2.open(h)
	if !w2.GetResumed() || w2.GetHeartbeatInterval().AsDuration() != 20*time.Second {
		t.Fatalf("resume asking for 20s: resumed %v, interval %v", w2.GetResumed(), w2.GetHeartbeatInterval().AsDuration())
	}
}

// countHandler routes like Router and counts the client messages it
// handles, by payload.
type countHandler struct {
	server.Router
	mu  sync.Mutex
	got map[string]int
}

func (h *countHandler) OnMessage(_ context.Context, _ *server.Session, m *server.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got[string(m.Payload)]++
	return nil
}

func (h *countHandler) count(p string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[p]
}

// Keys the SDK generated are checked among a fresh session's first
// messages, against what an earlier session handled without the client
// seeing the ack: its first maxResendSeq messages and its last 128. The
// rest, acknowledged long before, are not remembered: that is what keeps
// the dedupe store small.
func TestGeneratedKeysAcrossSessions(t *testing.T) {
	t.Parallel()
	h := &countHandler{got: make(map[string]int)}
	n := startNode(t, server.WithHandler(h), server.WithFrameRate(1e6, 1e6))
	msg := func(seq uint64, key string) *tetherv1.ConnectRequest {
		return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: "in"}, Payload: []byte(key), IdempotencyKey: key, GeneratedKey: true}}}
	}
	const sent = 4400
	c1 := n.dial(t, "")
	w1 := c1.open(&tetherv1.Hello{ClientId: "src"})
	for seq := uint64(1); seq <= sent; seq++ {
		c1.send(msg(seq, fmt.Sprintf("k%d", seq)))
	}
	waitFor(t, func() bool { return h.count(fmt.Sprintf("k%d", sent)) == 1 })
	c1.cancel() // the stream ends before the client saw the last acks
	waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })

	// The client lost its session and re-sends into the fresh one its
	// failed resume opened.
	c2 := n.dial(t, "")
	c2.open(&tetherv1.Hello{ClientId: "src", Resume: &tetherv1.Resume{SessionId: "lost-" + w1.GetSessionId()}})
	for i, tc := range []struct {
		key     string
		handled int // times handled in all, after the re-send
	}{
		{"k4400", 1}, // the last, in the ring: dropped
		{"k4300", 1}, // in the ring: dropped
		{"k5", 1},    // among the first 4096: checked and remembered: dropped
		{"k4100", 2}, // acked long ago and forgotten: a client never re-sends it
		{"k9999", 1}, // new
	} {
		c2.send(msg(uint64(i+1), tc.key))
		if a := c2.ackFrame(); a.GetSeq() != uint64(i+1) {
			t.Fatalf("re-send of %s: ack %d, want %d", tc.key, a.GetSeq(), i+1)
		}
		if got := h.count(tc.key); got != tc.handled {
			t.Errorf("%s handled %d times, want %d", tc.key, got, tc.handled)
		}
	}
}

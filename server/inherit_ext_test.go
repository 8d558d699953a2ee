package server_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// expectMessages reads the next len(want) messages and checks their seqs
// (from firstSeq up) and payloads.
func (c *conn) expectMessages(firstSeq uint64, want ...string) {
	c.t.Helper()
	for i, p := range want {
		m := c.message()
		if m.GetSeq() != firstSeq+uint64(i) || string(m.GetPayload()) != p {
			c.t.Fatalf("message seq %d %q; want seq %d %q", m.GetSeq(), m.GetPayload(), firstSeq+uint64(i), p)
		}
	}
}

func payloads(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("m%d", i))
	}
	return out
}

// A client id that reconnects without a valid resume, as the same
// principal, inherits the old session's undelivered messages (sent and
// unacked, or queued) as its first messages, in order, before anything
// newer; Welcome.took_over says so. Whether the old session is detached or
// still connected (a zombie stream), nothing is lost.
func TestTakeoverInheritsUndeliveredMessages(t *testing.T) {
	t.Parallel()
	for _, zombie := range []bool{false, true} {
		t.Run(fmt.Sprintf("old stream open %v", zombie), func(t *testing.T) {
			t.Parallel()
			n := startNode(t, noMaxAge())
			c1 := n.dial(t, "p")
			w1 := c1.open(&tetherv1.Hello{ClientId: "dev"})
			n.publishTo(t, "dev", payloads(1, 5)...)
			c1.expectMessages(1, payloads(1, 5)...)
			c1.send(ack(2))
			waitFor(t, func() bool { return n.info(t, w1.GetSessionId()).GetLastAckedSeq() == 2 })
			if !zombie {
				c1.close()
				waitState(t, n, w1.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
			}
			n.publishTo(t, "dev", "m6", "m7") // queued, or sent to the zombie

			c2 := n.dial(t, "p")
			w2 := c2.open(&tetherv1.Hello{ClientId: "dev"})
			took := w2.GetTookOver()
			if took.GetSessionId() != w1.GetSessionId() || took.GetInherited() != 5 || took.GetDropped() != nil {
				t.Fatalf("took_over %v; want session %s, 5 inherited, none dropped", took, w1.GetSessionId())
			}
			n.publishTo(t, "dev", "m8")
			c2.expectMessages(1, payloads(3, 8)...)
			if zombie {
				c1.expectEnd(codes.Aborted, "taken over")
			}
		})
	}
}

// A client whose resume failed (here: a stale token) but which names the
// session taken over already holds that session's messages up to its
// Resume.last_received_seq: the heir inherits only what came after, so
// nothing arrives twice, and nothing is reported dropped.
func TestTakeoverSkipsWhatTheFailedResumeHeld(t *testing.T) {
	t.Parallel()
	n := startNode(t, noMaxAge())
	c1 := n.dial(t, "p")
	w1 := c1.open(&tetherv1.Hello{ClientId: "dev"})
	n.publishTo(t, "dev", payloads(1, 6)...)
	c1.expectMessages(1, payloads(1, 6)...)
	c1.send(ack(2))
	waitFor(t, func() bool { return n.info(t, w1.GetSessionId()).GetLastAckedSeq() == 2 })
	c1.close()
	waitState(t, n, w1.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)

	c2 := n.dial(t, "p")
	openAfterStaleResume(t, c2, w1)
	n.publishTo(t, "dev", "m7")
	c2.expectMessages(1, payloads(5, 7)...)
}

// A fresh client id, or one whose old session had delivered everything,
// reports no inheritance: took_over is unset, or says 0 and nothing dropped.
func TestTakeoverWithNothingToInherit(t *testing.T) {
	t.Parallel()
	n := startNode(t, noMaxAge())
	c1 := n.dial(t, "p")
	w1 := c1.open(&tetherv1.Hello{ClientId: "idle"})
	if w1.GetTookOver() != nil {
		t.Fatalf("a fresh client id: took_over %v, want unset", w1.GetTookOver())
	}
	n.publishTo(t, "idle", "m1")
	c1.expectMessages(1, "m1")
	c1.send(ack(1))
	waitFor(t, func() bool { return n.info(t, w1.GetSessionId()).GetLastAckedSeq() == 1 })
	c2 := n.dial(t, "p")
	took := c2.open(&tetherv1.Hello{ClientId: "idle"}).GetTookOver()
	if took.GetSessionId() != w1.GetSessionId() || took.GetInherited() != 0 || took.GetDropped() != nil {
		t.Fatalf("took_over %v; want session %s, 0 inherited, none dropped", took, w1.GetSessionId())
	}
	n.publishTo(t, "idle", "m2")
	c2.expectMessages(1, "m2")
}

// What the old session had already lost, or what the heir's log cannot
// hold, is not inherited: Welcome.took_over.dropped names it exactly, in
// the old session's seqs.
func TestTakeoverReportsWhatWasDropped(t *testing.T) {
	t.Parallel()
	n := startNode(t, noMaxAge(), server.WithMaxOutboundQueue(3), server.WithOverflowPolicy(server.OverflowDropOldest))
	c1 := n.dial(t, "p")
	w1 := c1.open(&tetherv1.Hello{ClientId: "small"})
	c1.close()
	waitState(t, n, w1.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
	n.publishTo(t, "small", payloads(1, 5)...) // the log keeps 3, 4, 5

	c2 := n.dial(t, "p")
	took := c2.open(&tetherv1.Hello{ClientId: "small"}).GetTookOver()
	if took.GetInherited() != 3 || took.GetDropped().GetFirst() != 1 || took.GetDropped().GetLast() != 2 {
		t.Fatalf("took_over %v; want 3 inherited, 1..2 dropped", took)
	}
	c2.expectMessages(1, payloads(3, 5)...)
}

// Another principal's session of the client id is neither taken over nor
// inherited from.
func TestTakeoverByAnotherPrincipalInheritsNothing(t *testing.T) {
	t.Parallel()
	n := startNode(t, noMaxAge())
	c1 := n.dial(t, "alice")
	c1.open(&tetherv1.Hello{ClientId: "shared"})
	n.publishTo(t, "shared", "for alice")
	c1.expectMessages(1, "for alice")
	c2 := n.dial(t, "mallory")
	c2.send(hello(&tetherv1.Hello{ClientId: "shared"}))
	c2.expectEnd(codes.PermissionDenied, "belongs to a session of another principal")
	n.publishTo(t, "shared", "still alice's")
	c1.expectMessages(2, "still alice's")
}

// openAfterStaleResume opens a fresh session of client id "dev" on c whose
// resume of old fails (a stale token) though it names seq 4 as received,
// and checks that it inherits old's m5 and m6 only, dropping nothing.
func openAfterStaleResume(t *testing.T, c *conn, old *tetherv1.Welcome) {
	t.Helper()
	w := c.open(&tetherv1.Hello{ClientId: "dev", Resume: &tetherv1.Resume{
		SessionId: old.GetSessionId(), ResumeToken: "stale", LastReceivedSeq: 4,
	}})
	if w.GetResumed() {
		t.Fatal("a stale token resumed the session")
	}
	took := w.GetTookOver()
	if took.GetSessionId() != old.GetSessionId() || took.GetInherited() != 2 || took.GetDropped() != nil {
		t.Fatalf("took_over %v; want session %s, 2 inherited (m5, m6), none dropped", took, old.GetSessionId())
	}
}

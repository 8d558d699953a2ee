package server_test

import (
	"fmt"
	"testing"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
)

// These tests run nodes whose NATS broker keeps session logs in the
// holding node's memory (natsbroker.DurabilityNode): routing between nodes
// rides core NATS, a resume on the same node loses nothing, and a resume
// on another node loses what the client had not received and says so.

// startNodeDurable starts node id on the NATS server at url, its broker in
// DurabilityNode.
func startNodeDurable(t *testing.T, url, id string) *natsNode {
	t.Helper()
	return startNATSNodeWith(t, url, id, natsbroker.Options{Durability: natsbroker.DurabilityNode}, noMaxAge())
}

// detachedWithQueued opens a session of client id "dev" on holder (its
// Welcome tells the client to come back there: resume_anywhere false), has
// publisher send it m1..m5 (received, m1 and m2 acknowledged), ends its
// stream and has publisher send m6 and m7, queued on holder for the
// session. It returns the first Welcome.
func detachedWithQueued(t *testing.T, holder, publisher *natsNode) *tetherv1.Welcome {
	t.Helper()
	c := holder.dial(t, "p")
	w := c.open(&tetherv1.Hello{ClientId: "dev"})
	if w.GetResumeAnywhere() {
		t.Error("Welcome.resume_anywhere is true; want false: only the holder resumes the session without loss")
	}
	publisher.publishTo(t, "dev", payloads(1, 5)...)
	c.expectMessages(1, payloads(1, 5)...)
	c.send(ack(2))
	waitFor(t, func() bool { return holder.info(t, w.GetSessionId()).GetLastAckedSeq() == 2 })
	c.close()
	waitState(t, holder.node, w.GetSessionId(), tetherv1.SessionState_SESSION_STATE_DETACHED)
	publisher.publishTo(t, "dev", "m6", "m7")
	return w
}

// A session resumed on the node holding it gets every message it had not
// received, from its log in the node's memory: nothing is lost.
func TestNodeDurabilityResumeOnTheSameNodeLosesNothing(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a, b := startNodeDurable(t, ns.URL(), "a"), startNodeDurable(t, ns.URL(), "b")
	w1 := detachedWithQueued(t, a, b)

	c := a.dial(t, "p")
	w2 := c.open(rvResume(w1.GetSessionId(), w1.GetResumeToken(), 4))
	if !w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED || w2.GetLost() != nil || w2.GetLastSentSeq() != 7 {
		t.Fatalf("welcome: resumed %v, %v, lost %v, last sent %d; want resumed, RESUMED, nothing lost, last sent 7",
			w2.GetResumed(), w2.GetResumeStatus(), w2.GetLost(), w2.GetLastSentSeq())
	}
	c.expectMessages(5, payloads(5, 7)...)
	b.publishTo(t, "dev", "m8")
	c.expectMessages(8, "m8")
}

// A session resumed on another node, while the node holding it lives,
// loses what it had not received (the log stays in that node's memory),
// and the resume says so exactly: RESUMED_WITH_GAP, lost 5..7. What comes
// next follows the lost range.
func TestNodeDurabilityResumeElsewhereReportsTheLoss(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a, b := startNodeDurable(t, ns.URL(), "a"), startNodeDurable(t, ns.URL(), "b")
	w1 := detachedWithQueued(t, a, b)

	c := b.dial(t, "p")
	w2 := c.open(rvResume(w1.GetSessionId(), w1.GetResumeToken(), 4))
	lost := w2.GetLost()
	if !w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP ||
		lost.GetFirst() != 5 || lost.GetLast() != 7 || w2.GetLastSentSeq() != 7 {
		t.Fatalf("welcome: resumed %v, %v, lost %v, last sent %d; want resumed, RESUMED_WITH_GAP, lost 5..7, last sent 7",
			w2.GetResumed(), w2.GetResumeStatus(), lost, w2.GetLastSentSeq())
	}
	a.publishTo(t, "dev", "m8") // from the old holder: routed to b
	c.expectMessages(8, "m8")
}

// When the node holding a session dies, a resume on another node loses at
// most what the client had not received, and says so: the lost range
// starts right after the client's last received seq and covers every seq
// the dead node may have used (the horizon it stored ahead of its
// appends), and new messages are numbered after it.
func TestNodeDurabilityNodeDeathReportsTheLoss(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a, b := startNodeDurable(t, ns.URL(), "a"), startNodeDurable(t, ns.URL(), "b")
	w1 := detachedWithQueued(t, a, b)
	a.nc.Close() // gone from NATS at once, as a crash
	a.tn.Kill()

	c := b.dial(t, "p")
	w2 := c.open(rvResume(w1.GetSessionId(), w1.GetResumeToken(), 5))
	lost := w2.GetLost()
	if !w2.GetResumed() || w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP ||
		lost.GetFirst() != 6 || lost.GetLast() < 7 || w2.GetLastSentSeq() != lost.GetLast() {
		t.Fatalf("welcome: resumed %v, %v, lost %v, last sent %d; want resumed, RESUMED_WITH_GAP, lost from 6 to at least 7, last sent its end",
			w2.GetResumed(), w2.GetResumeStatus(), lost, w2.GetLastSentSeq())
	}
	// Just after the kill, a may still look subscribed: the publisher
	// retries, as the error says.
	b.publishRetrying(t, "dev", "m8")
	c.expectMessages(lost.GetLast()+1, "m8")
}

// Messages routed between nodes over core NATS arrive in the order their
// sender sent them: a session on b sends 300 messages flat out to a client
// id held on a.
func TestNodeDurabilityRoutesInOrder(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a, b := startNodeDurable(t, ns.URL(), "a"), startNodeDurable(t, ns.URL(), "b")
	to := a.dial(t, "p")
	to.open(&tetherv1.Hello{ClientId: "dev", ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 512, Bytes: 1 << 20}})
	from := b.dial(t, "p")
	from.open(&tetherv1.Hello{ClientId: "sender"})
	const n = 300
	for i := 1; i <= n; i++ { // the receiver's frames are read meanwhile
		from.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
			Seq: uint64(i), Target: &tetherv1.ClientMessage_ClientId{ClientId: "dev"}, Payload: fmt.Appendf(nil, "m%d", i)}}})
	}
	to.expectMessages(1, payloads(1, n)...)
	for from.ackFrame().GetSeq() < n { // each within waitLong
	}
}

// A fresh session that takes a client id over on another node, from a
// session whose node died, inherits nothing (the log was in that node's
// memory) and is told what was dropped: everything after the last
// acknowledged seq, up to what the dead node may have used.
func TestNodeDurabilityTakeoverAfterNodeDeathReportsWhatWasDropped(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a, b := startNodeDurable(t, ns.URL(), "a"), startNodeDurable(t, ns.URL(), "b")
	w1 := detachedWithQueued(t, a, b)
	a.nc.Close() // gone from NATS at once, as a crash
	a.tn.Kill()

	c := b.dial(t, "p")
	took := c.open(&tetherv1.Hello{ClientId: "dev"}).GetTookOver()
	if took.GetSessionId() != w1.GetSessionId() || took.GetInherited() != 0 || took.GetDropped().GetFirst() != 3 || took.GetDropped().GetLast() < 7 {
		t.Fatalf("took_over %v; want session %s, 0 inherited, dropped from 3 to at least 7", took, w1.GetSessionId())
	}
	b.publishRetrying(t, "dev", "m8")
	c.expectMessages(1, "m8")
}

// On a cluster of three NATS servers, with the broker's streams in three
// replicas, a node's death is reported as on one server: each node is
// connected to a server of its own.
func TestNodeDurabilityNodeDeathOnANATSCluster(t *testing.T) {
	t.Parallel()
	servers := natstest.StartCluster(t, 3)
	o := natsbroker.Options{Durability: natsbroker.DurabilityNode, Replicas: 3}
	a := startNATSNodeWith(t, servers[0].URL(), "a", o, noMaxAge())
	b := startNATSNodeWith(t, servers[1].URL(), "b", o, noMaxAge())
	w1 := detachedWithQueued(t, a, b)
	a.nc.Close() // gone from NATS at once, as a crash
	a.tn.Kill()

	c := b.dial(t, "p")
	w2 := c.open(rvResume(w1.GetSessionId(), w1.GetResumeToken(), 5))
	if lost := w2.GetLost(); w2.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP || lost.GetFirst() != 6 || lost.GetLast() < 7 {
		t.Fatalf("welcome: %v, lost %v; want RESUMED_WITH_GAP, lost from 6 to at least 7", w2.GetResumeStatus(), lost)
	}
	b.publishRetrying(t, "dev", "m8")
	c.expectMessages(w2.GetLost().GetLast()+1, "m8")
}

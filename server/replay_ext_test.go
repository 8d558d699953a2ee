package server_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// unreadable is a memory broker whose logs fail one Read once failNext is
// set, as a shared broker's may when its store does not answer in time.
type unreadable struct {
	*memory.Broker
	failNext atomic.Bool
}

func (b *unreadable) Log(sessionID string) broker.Log {
	return unreadableLog{Log: b.Broker.Log(sessionID), b: b}
}

type unreadableLog struct {
	broker.Log
	b *unreadable
}

func (l unreadableLog) Read(ctx context.Context, from uint64, fn func(broker.Entry) bool) error {
	if l.b.failNext.CompareAndSwap(true, false) {
		return errors.New("nats: no responders available for request")
	}
	return l.Log.Read(ctx, from, fn)
}

// A resume whose replay cannot be read from the session's log fails with
// UNAVAILABLE, and the client's retry gets every message it had not
// received: the failed read does not make the session go on past them
// (TestDisruptions/DrainNode lost the messages logged on the drained node
// this way).
func TestResumeFailsWhenItsReplayCannotBeRead(t *testing.T) {
	t.Parallel()
	b := &unreadable{Broker: memory.New()}
	n := startNode(t, noMaxAge(), server.WithBroker(b))
	c1 := n.dial(t, "")
	w1 := c1.open(&tetherv1.Hello{ClientId: "r"})
	n.publishTo(t, "r", "m1")
	if m := c1.message(); m.GetSeq() != 1 {
		t.Fatalf("got seq %d, want 1", m.GetSeq())
	}
	c1.cancel()
	waitFor(t, func() bool { return n.state(t, w1.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
	n.publishTo(t, "r", "m2", "m3")

	b.failNext.Store(true)
	c2 := n.dial(t, "")
	c2.send(hello(resumeHello(w1, 1)))
	c2.expectEnd(codes.Unavailable, "retry the resume")

	c3 := n.dial(t, "")
	w3 := c3.open(resumeHello(w1, 1))
	if w3.GetResumeStatus() != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED || w3.GetSessionId() != w1.GetSessionId() {
		t.Fatalf("retried resume welcome = %v", w3)
	}
	for i, want := range []string{"m2", "m3"} {
		if m := c3.message(); m.GetSeq() != uint64(i+2) || string(m.GetPayload()) != want {
			t.Fatalf("replayed seq %d %q, want seq %d %q", m.GetSeq(), m.GetPayload(), i+2, want)
		}
	}
}

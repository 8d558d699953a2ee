package nats_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// fakeHolder subscribes, on its own connection, to the route of session s1
// and to the liveness subject of node "A", which the record names as its
// holder: what the other nodes see of node A. routed gets each request on
// the route.
type fakeHolder struct {
	nc     *nats.Conn
	routed chan *nats.Msg
}

func newFakeHolder(t *testing.T, url, prefix string, alive bool) *fakeHolder {
	t.Helper()
	tok := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	h := &fakeHolder{nc: natstest.Connect(t, url), routed: make(chan *nats.Msg, 16)}
	if _, err := h.nc.ChanSubscribe(prefix+".r.s."+tok("s1"), h.routed); err != nil {
		t.Fatal(err)
	}
	if _, err := h.nc.Subscribe(prefix+".node."+tok("A"), func(m *nats.Msg) {
		if alive {
			_ = m.Respond([]byte("ok"))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

// failFastPublisher starts a publishing node with a long Timeout and a
// short Heartbeat, and the record of s1 held by node A.
func failFastPublisher(t *testing.T) (url, prefix string, p *natsbroker.Broker) {
	url = natstest.Start(t).URL()
	prefix = newPrefix()
	p, _ = nodeWith(t, url, natsbroker.Options{Prefix: prefix, MemoryStorage: true, Timeout: time.Minute, Heartbeat: 100 * time.Millisecond, Logger: quiet()}, "P")
	must(t, p.PutSession(t.Context(), broker.SessionRecord{ID: "s1", Node: "A"}))
	return url, prefix, p
}

// A Publish to a session whose node took the message and then died (its
// connection closed) fails at the next liveness check, not after Timeout,
// with a retryable error.
func TestFailFastHolderDied(t *testing.T) {
	url, prefix, p := failFastPublisher(t)
	h := newFakeHolder(t, url, prefix, true)
	go func() {
		<-h.routed
		h.nc.Close() // died holding the request
	}()
	start := time.Now()
	n, err := p.Publish(t.Context(), &broker.Message{Target: broker.Session("s1"), Payload: []byte("x")})
	t.Logf("Publish to a node that died: %v after %v", err, time.Since(start))
	if n != 0 || !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %d, %v; want 0 and an error matching broker.ErrUnavailable from the liveness check, not the Timeout", n, err)
	}
}

// A node that hangs (its connection open, nothing answered) fails the
// Publish too: its liveness subject does not answer.
func TestFailFastHolderHangs(t *testing.T) {
	url, prefix, p := failFastPublisher(t)
	newFakeHolder(t, url, prefix, false)
	start := time.Now()
	n, err := p.Publish(t.Context(), &broker.Message{Target: broker.Session("s1"), Payload: []byte("x")})
	t.Logf("Publish to a node that hangs: %v after %v", err, time.Since(start))
	if n != 0 || !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %d, %v; want 0 and an error matching broker.ErrUnavailable from the liveness check, not the Timeout", n, err)
	}
}

// A live holder that answers slowly (a long log append, say) is waited
// for: the liveness checks pass, and its answer counts.
func TestFailFastSlowHolderWaitedFor(t *testing.T) {
	url, prefix, p := failFastPublisher(t)
	h := newFakeHolder(t, url, prefix, true)
	go func() {
		m := <-h.routed
		time.Sleep(500 * time.Millisecond) // five Heartbeats
		_ = m.Respond([]byte("1"))
	}()
	if n, err := p.Publish(t.Context(), &broker.Message{Target: broker.Session("s1"), Payload: []byte("x")}); n != 1 || err != nil {
		t.Fatalf("Publish = %d, %v; want the slow holder's 1", n, err)
	}
}

// An eviction that the holder took before it died (NATS still routed to
// its connection) moves the session all the same, at the next liveness
// check: a dead node holds nothing, and one cut off from NATS reads the
// note once back. The resume it serves does not fail.
func TestFailFastEvictHolderDied(t *testing.T) {
	url, prefix, p := failFastPublisher(t)
	h := newFakeHolder(t, url, prefix, true)
	go func() {
		<-h.routed
		h.nc.Close() // died holding the request
	}()
	if err := p.Evict(t.Context(), broker.Eviction{Session: "s1", Node: "P"}); err != nil {
		t.Fatalf("Evict = %v; want nil: the holder died, the session is free to move", err)
	}
}

// A holder that hangs does not keep its session: the eviction moves it
// after the liveness check fails.
func TestFailFastEvictHolderHangs(t *testing.T) {
	url, prefix, p := failFastPublisher(t)
	newFakeHolder(t, url, prefix, false)
	if err := p.Evict(t.Context(), broker.Eviction{Session: "s1", Node: "P"}); err != nil {
		t.Fatalf("Evict = %v; want nil: the holder does not answer, the session is free to move", err)
	}
}

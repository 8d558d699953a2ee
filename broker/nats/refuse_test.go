package nats_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/internal/natstest"
)

// A message that reached its session, whose log append then failed, is
// refused to its publisher (retryably: it was not queued), on the holding
// node and from another: it is not parked, which would tell the publisher
// it was delivered while it waits for a drain the failing log refuses too.
func TestFailedAppendIsNotParked(t *testing.T) {
	srv := natstest.Start(t)
	prefix := newPrefix()
	a, ra := handoffNode(t, srv.URL(), prefix, "A", nil)
	p := natsNode(t, srv.URL(), prefix, "P")
	ctx := t.Context()
	must(t, a.PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "A"}))
	must(t, a.Bind(ctx, broker.Session("s1")))
	// The log holds seq 1 already: the receiver's next append, seq 1,
	// fails.
	if _, err := a.Log("s1").Append(ctx, broker.Entry{Seq: 1, Message: &broker.Message{Target: broker.Session("s1")}}, 10); err != nil {
		t.Fatal(err)
	}
	ra.hold("s1", 0)
	if n, err := p.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("x")}); n != 0 || !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish from another node = %d, %v; want 0 and an error matching broker.ErrUnavailable", n, err)
	}
	if n, err := a.Publish(ctx, &broker.Message{Target: broker.Session("s1"), Payload: []byte("y")}); n != 0 || !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish on the holding node = %d, %v; want 0 and an error matching broker.ErrUnavailable", n, err)
	}
	if n := parkedCount(t, srv.URL(), prefix, "s1"); n != 0 {
		t.Errorf("%d messages parked for the session", n)
	}
}

// parkedCount returns how many messages are parked for session id.
func parkedCount(t *testing.T, url, prefix, id string) int {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := js.Stream(t.Context(), strings.ToUpper(prefix)+"_LOG")
	if err != nil {
		t.Fatal(err)
	}
	subj := prefix + ".park.s." + base64.RawURLEncoding.EncodeToString([]byte(id))
	info, err := ls.Info(t.Context(), jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subj])
}

// A Bind that fails (its caller's context ended while the node flushed its
// subscription) leaves the address unbound: a binding left behind would
// take the address's messages for a session the caller dropped.
func TestFailedBindLeavesNothingBound(t *testing.T) {
	bs, _ := moveNodes(t, "A", "P")
	a, p := bs[0], bs[1]
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// The flush may still win the race with the ended context: each
	// attempt binds an address of its own, until one fails.
	var failed broker.Address
	for i := 0; failed == (broker.Address{}); i++ {
		if i == 100 {
			t.Fatal("100 Binds with an ended context all succeeded")
		}
		if addr := broker.Client("c" + strconv.Itoa(i)); a.Bind(ctx, addr) != nil {
			failed = addr
		}
	}
	must(t, a.Conn().Flush()) // whatever subscription is left, NATS knows it
	if n, err := p.Publish(t.Context(), &broker.Message{Target: failed, Payload: []byte("x")}); n != 0 || err != nil {
		t.Errorf("Publish to the client id whose Bind failed = %d, %v; want 0, nil: no node binds it", n, err)
	}
}

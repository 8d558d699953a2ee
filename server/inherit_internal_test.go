package server

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// A message routed to a session that is being taken over (its delivery
// looked the session up before the takeover) goes to the heir, after the
// messages the heir inherits: never into the old session's log, which
// ends with it.
func TestMessageRoutedDuringTheHandOverFollowsTheInherited(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv, err := New(WithServerID("inherit"))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		ctx := context.Background()
		st := newStream(srv, nil, "old")
		defer st.finish(nil)
		old, _, err := srv.create(ctx, st, "p", &tetherv1.Hello{ClientId: "x"})
		if err != nil {
			t.Fatal(err)
		}
		msg := func(p string) *broker.Message {
			return &broker.Message{Target: broker.Client("x"), Payload: []byte(p)}
		}
		old.enqueue(msg("queued before"), true)

		heir := srv.newSession("p", &tetherv1.Hello{ClientId: "x"})
		heir.handedOver = make(chan struct{})
		old.mu.Lock()
		old.heir = heir // as handOver does, before it reads old's log
		old.mu.Unlock()
		routed := make(chan enqueued)
		go func() { routed <- old.enqueue(msg("routed meanwhile"), true) }()
		synctest.Wait() // the late delivery waits for the hand-over

		entries, err := old.readReplay(ctx, 1, old.outSeq)
		if err != nil || len(entries) != 1 {
			t.Fatalf("old log %v, %v; want the one message queued before", entries, err)
		}
		heir.enqueue(entries[0].Message, true)
		close(heir.handedOver)
		if <-routed != queued {
			t.Fatal("the message routed during the hand-over was not queued")
		}
		got, err := heir.readReplay(ctx, 1, heir.outSeq)
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, e := range got {
			ps = append(ps, string(e.Message.Payload))
		}
		if len(ps) != 2 || ps[0] != "queued before" || ps[1] != "routed meanwhile" {
			t.Fatalf("heir's log %q; want the inherited message, then the one routed meanwhile", ps)
		}
		if old.outSeq != 1 {
			t.Fatalf("the old session's log grew to %d after its hand-over", old.outSeq)
		}
	})
}

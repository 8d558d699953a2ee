package brokertest

import (
	"testing"

	"github.com/tetherhq/tether/broker"
)

var routeTests = []test{
	{"Unbound", testPublishUnbound},
	{"Kinds", testPublishKinds},
	{"Reach", testPublishReach},
	{"OncePerNode", testPublishOncePerNode},
	{"BindsCounted", testBindsCounted},
	{"UnbindUnbound", testUnbindUnbound},
	{"MessageIntact", testMessageIntact},
	{"DeliverReentrant", testDeliverReentrant},
}

// publish publishes m and fails t unless it reached want sessions.
func publish(t *testing.T, b broker.Broker, m *broker.Message, want int) {
	t.Helper()
	n, err := b.Publish(t.Context(), m)
	if err != nil {
		t.Fatalf("Publish to %v %q: %v", m.Target.Kind, m.Target.Name, err)
	}
	if n != want {
		t.Errorf("Publish to %v %q reached %d sessions, want %d", m.Target.Kind, m.Target.Name, n, want)
	}
}

// delivered fails t unless r was given exactly want messages since the last
// call, and returns them.
func delivered(t *testing.T, r *recorder, want int) []*broker.Message {
	t.Helper()
	msgs := r.take()
	if len(msgs) != want {
		t.Errorf("Deliver called %d times, want %d", len(msgs), want)
	}
	return msgs
}

func bind(t *testing.T, b broker.Broker, addr broker.Address) {
	t.Helper()
	if err := b.Bind(t.Context(), addr); err != nil {
		t.Fatalf("Bind %v %q: %v", addr.Kind, addr.Name, err)
	}
}

func unbind(t *testing.T, b broker.Broker, addr broker.Address) {
	t.Helper()
	if err := b.Unbind(t.Context(), addr); err != nil {
		t.Fatalf("Unbind %v %q: %v", addr.Kind, addr.Name, err)
	}
}

func testPublishUnbound(t *testing.T, s suite) {
	b, r := s.start(t)
	for _, addr := range []broker.Address{broker.Topic("t"), broker.Session("s"), broker.Client("c")} {
		publish(t, b, message(addr, "x"), 0)
	}
	delivered(t, r, 0)
}

func testPublishKinds(t *testing.T, s suite) {
	b, r := s.start(t)
	addrs := []broker.Address{broker.Topic("a"), broker.Session("a"), broker.Client("a")}
	for _, bound := range addrs {
		bind(t, b, bound)
		for _, target := range addrs {
			want := 0
			if target == bound {
				want = 1
			}
			publish(t, b, message(target, "x"), want)
			for _, m := range delivered(t, r, want) {
				if m.Target != bound {
					t.Errorf("with %v %q bound, delivered a message for %v %q", bound.Kind, bound.Name, m.Target.Kind, m.Target.Name)
				}
			}
		}
		unbind(t, b, bound)
	}
}

func testPublishReach(t *testing.T, s suite) {
	b, r := s.start(t)
	bind(t, b, broker.Topic("t"))
	for _, reach := range []int{3, 0, 1} {
		r.setReach(reach)
		publish(t, b, message(broker.Topic("t"), "x"), reach)
		delivered(t, r, 1)
	}
}

func testPublishOncePerNode(t *testing.T, s suite) {
	b, r := s.start(t)
	for range 3 {
		bind(t, b, broker.Topic("t"))
	}
	r.setReach(3)
	publish(t, b, message(broker.Topic("t"), "x"), 3)
	delivered(t, r, 1)
}

func testBindsCounted(t *testing.T, s suite) {
	b, r := s.start(t)
	addr := broker.Topic("t")
	bind(t, b, addr)
	bind(t, b, addr)
	unbind(t, b, addr)
	publish(t, b, message(addr, "after one unbind"), 1)
	delivered(t, r, 1)
	unbind(t, b, addr)
	publish(t, b, message(addr, "after two unbinds"), 0)
	delivered(t, r, 0)
}

func testUnbindUnbound(t *testing.T, s suite) {
	b, r := s.start(t)
	addr := broker.Session("s")
	unbind(t, b, addr)
	unbind(t, b, addr)
	bind(t, b, addr)
	publish(t, b, message(addr, "bound once"), 1)
	delivered(t, r, 1)
	unbind(t, b, addr)
	publish(t, b, message(addr, "unbound"), 0)
	delivered(t, r, 0)
}

func testMessageIntact(t *testing.T, s suite) {
	b, r := s.start(t)
	want := message(broker.Client("c"), "payload")
	bind(t, b, want.Target)
	publish(t, b, want, 1)
	for _, got := range delivered(t, r, 1) {
		if !equalMessage(got, want) {
			t.Errorf("delivered %+v, want %+v", got, want)
		}
	}
}

// testDeliverReentrant checks that Deliver may call the broker back.
func testDeliverReentrant(t *testing.T, s suite) {
	b, r := s.start(t)
	outer, inner := broker.Topic("outer"), broker.Session("inner")
	bind(t, b, outer)
	bind(t, b, inner)
	r.setHook(func(m *broker.Message) {
		if m.Target != outer {
			return
		}
		ctx := t.Context()
		if n, err := b.Publish(ctx, message(inner, "inner")); n != 1 || err != nil {
			t.Errorf("Publish from Deliver = %d, %v; want 1, nil", n, err)
		}
		if err := b.Bind(ctx, broker.Topic("other")); err != nil {
			t.Errorf("Bind from Deliver: %v", err)
		}
		if _, err := b.Log("inner").Append(ctx, entry(1), 8); err != nil {
			t.Errorf("Log.Append from Deliver: %v", err)
		}
		if _, err := b.Seen(ctx, "scope", "key", defaultTimeout); err != nil {
			t.Errorf("Seen from Deliver: %v", err)
		}
		if err := b.PutSession(ctx, broker.SessionRecord{ID: "inner"}); err != nil {
			t.Errorf("PutSession from Deliver: %v", err)
		}
	})
	within(t, "Publish with a Deliver that calls the broker", func() {
		if n, err := b.Publish(t.Context(), message(outer, "outer")); n != 1 || err != nil {
			t.Errorf("Publish = %d, %v; want 1, nil", n, err)
		}
	})
	delivered(t, r, 2)
	if got := readSeqs(t, b.Log("inner"), 0); len(got) != 1 {
		t.Errorf("log appended from Deliver holds seqs %v, want [1]", got)
	}
}

package brokertest

import (
	"testing"

	"github.com/tetherhq/tether/broker"
)

var nodeTests = []test{
	{"Shared", testSharedConsistent},
	{"EvictAlone", testEvictAlone},
}

// testSharedConsistent checks that Shared reports the same before Start,
// after it and after Close: it is what the broker is, not a state.
func testSharedConsistent(t *testing.T, s suite) {
	b := s.open(t)
	want := b.Shared()
	check := func(when string) {
		t.Helper()
		for range 3 {
			if got := b.Shared(); got != want {
				t.Fatalf("Shared() %s = %v, but %v before Start", when, got, want)
			}
		}
	}
	check("before Start")
	if err := b.Start(t.Context(), "brokertest", newRecorder()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	check("after Start")
	bind(t, b, broker.Session("s"))
	check("after Bind")
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check("after Close")
}

// testEvictAlone checks that Evict without other nodes returns nil at once,
// and never calls the node's own Receiver, even for addresses it bound.
func testEvictAlone(t *testing.T, s suite) {
	b, r := s.start(t)
	bind(t, b, broker.Session("s"))
	bind(t, b, broker.Client("c"))
	for _, e := range []broker.Eviction{
		{Session: "s", Node: "other"},
		{Client: "c", Principal: "p", By: "s2", Node: "other"},
		{Session: "unknown", Node: "other"},
		{Client: "unknown", Principal: "p", By: "s2", Node: "other"},
	} {
		quickly(t, "Evict without other nodes", func() {
			if err := b.Evict(t.Context(), e); err != nil {
				t.Errorf("Evict(%+v) without other nodes: %v", e, err)
			}
		})
	}
	if got := r.takeEvictions(); len(got) != 0 {
		t.Errorf("Evict called the node's own Receiver with %+v", got)
	}
	delivered(t, r, 0)
}

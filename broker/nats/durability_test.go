package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

func TestParseDurability(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]natsbroker.Durability{"": natsbroker.DurabilityCluster, "cluster": natsbroker.DurabilityCluster, "Node": natsbroker.DurabilityNode} {
		if got, err := natsbroker.ParseDurability(in); got != want || err != nil {
			t.Errorf("ParseDurability(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := natsbroker.ParseDurability("disk")
	if err == nil || !strings.Contains(err.Error(), `"cluster"`) || !strings.Contains(err.Error(), `"node"`) {
		t.Errorf("ParseDurability(disk) = %v; want an error naming cluster and node", err)
	}
	if _, err := natsbroker.New(nil, natsbroker.Options{Durability: "disk"}); err == nil {
		t.Error("New with Durability disk succeeded")
	}
}

// In DurabilityNode a log lives on the node that appends to it: another
// node reads it as empty, and learns from LastSeq how far it may have
// gone: at least the last seq appended, once Sync returned (the horizon
// stored ahead of the appends), and exactly that once the holder let the
// session go. Delete forgets it everywhere.
func TestNodeDurabilityLog(t *testing.T) {
	t.Parallel()
	url, prefix := natstest.Start(t).URL(), newPrefix()
	o := natsbroker.Options{Prefix: prefix, MemoryStorage: true, Logger: quiet(), Durability: natsbroker.DurabilityNode}
	a, _ := nodeWith(t, url, o, "a")
	b, _ := nodeWith(t, url, o, "b")
	ctx := t.Context()
	must(t, a.Bind(ctx, broker.Session("s")))
	la, lb := a.Log("s"), b.Log("s")
	for seq := uint64(1); seq <= 3; seq++ {
		if _, err := la.Append(ctx, broker.Entry{Seq: seq, Message: &broker.Message{Target: broker.Session("s")}}, 16); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := la.Append(ctx, broker.Entry{Seq: 3, Message: &broker.Message{}}, 16); err == nil {
		t.Error("an append of seq 3 after seq 3 succeeded")
	}
	must(t, la.(broker.Syncer).Sync(ctx))
	lastSeq := func(l broker.Log) uint64 {
		t.Helper()
		n, err := l.(broker.Bounded).LastSeq(ctx)
		must(t, err)
		return n
	}
	if n := lastSeq(la); n != 3 {
		t.Errorf("LastSeq on the holder = %d; want 3", n)
	}
	if n := lastSeq(lb); n < 3 {
		t.Errorf("LastSeq on another node = %d; want at least 3 once Sync returned", n)
	}
	read := func(l broker.Log) int {
		t.Helper()
		n := 0
		must(t, l.Read(ctx, 0, func(broker.Entry) bool { n++; return true }))
		return n
	}
	if n := read(lb); n != 0 {
		t.Errorf("another node read %d entries; want none (they are in the holder's memory)", n)
	}
	must(t, la.Trim(ctx, 1))
	if n := read(la); n != 2 {
		t.Errorf("the holder read %d entries after trimming seq 1; want 2", n)
	}
	must(t, a.Unbind(ctx, broker.Session("s")))
	if n := lastSeq(lb); n != 3 {
		t.Errorf("LastSeq on another node after the holder let the session go = %d; want exactly 3", n)
	}
	must(t, lb.Delete(ctx))
	if n := lastSeq(lb); n != 0 {
		t.Errorf("LastSeq after Delete = %d; want 0", n)
	}
}

// A session's writer sends a message (Sync), and a publisher is told it
// was delivered, only once the horizon stored by the session's node covers
// it; when the horizon cannot be stored (NATS is gone), Sync fails as
// unavailable once the appends pass the stored horizon, rather than let a
// message out that a death of the node would lose unreported.
func TestNodeDurabilitySyncWaitsForTheHorizon(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	o := natsbroker.Options{Prefix: newPrefix(), MemoryStorage: true, Logger: quiet(), Durability: natsbroker.DurabilityNode, Timeout: time.Second}
	a, r := nodeWith(t, srv.URL(), o, "a")
	ctx := t.Context()
	must(t, a.Bind(ctx, broker.Session("s")))
	if n, err := a.Publish(ctx, &broker.Message{Target: broker.Session("s"), Payload: []byte("m1")}); n != 1 || err != nil {
		t.Fatalf("Publish = %d, %v; want 1, nil", n, err)
	}
	if r.count("m1") != 1 {
		t.Fatalf("the receiver got m1 %d times; want once", r.count("m1"))
	}
	l := a.Log("s")
	must(t, l.(broker.Syncer).Sync(ctx)) // seq 1: covered
	srv.Shutdown()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for seq := uint64(2); seq <= 2048; seq++ { // past the horizon stored ahead
		if _, err := l.Append(ctx, broker.Entry{Seq: seq, Message: &broker.Message{Target: broker.Session("s")}}, 4096); err != nil {
			t.Fatalf("Append %d: %v; want the node's memory to take it", seq, err)
		}
	}
	if err := l.(broker.Syncer).Sync(sctx); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Sync with NATS gone = %v; want an error matching broker.ErrUnavailable", err)
	}
}

// With DurabilityNode, keys are the node's: one recorded without waiting
// (Record, as a server records a handled message's key) is found by the
// node's own checks, and no other node's.
func TestNodeDurabilityRecordIsTheNodes(t *testing.T) {
	t.Parallel()
	url, prefix := natstest.Start(t).URL(), newPrefix()
	o := natsbroker.Options{Prefix: prefix, MemoryStorage: true, Logger: quiet(), Durability: natsbroker.DurabilityNode}
	a, _ := nodeWith(t, url, o, "a")
	b, _ := nodeWith(t, url, o, "b")
	ctx := t.Context()
	stored := make(chan error, 1)
	a.Record("scope", "k", time.Minute, func(err error) { stored <- err })
	must(t, <-stored)
	if ok, err := a.Recorded(ctx, "scope", "k"); err != nil || !ok {
		t.Fatalf("Recorded on the node that recorded the key = %v, %v; want true", ok, err)
	}
	if dup, err := a.Seen(ctx, "scope", "k", time.Minute); err != nil || !dup {
		t.Fatalf("Seen on the node that recorded the key = %v, %v; want a duplicate", dup, err)
	}
	if ok, err := b.Recorded(ctx, "scope", "k"); err != nil || ok {
		t.Fatalf("Recorded on another node = %v, %v; want false (keys are the node's)", ok, err)
	}
}

package nats_test

import (
	"context"
	"testing"
	"time"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/profile"
)

// TestRecordOutlivesRecordTTL keeps a session connected to one node for
// three times RecordTTL (1s here), then kills that node: the session
// resumes on the other, because its node kept refreshing its record while
// it was connected.
func TestRecordOutlivesRecordTTL(t *testing.T) {
	t.Parallel()
	urls := natstest.Start(t).URL()
	const ttl = time.Second
	o := natsbroker.Options{Prefix: newPrefix(), RecordTTL: ttl, Timeout: 3 * time.Second, Logger: quiet()}
	n1 := startNodeWith(t, "n1", urls, o)
	n2 := startNodeWith(t, "n2", urls, o)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	states := make(chan client.StateChange, 16)
	cs, err := client.New(client.WithAddrs(n1.addr, n2.addr), client.WithClientID("long-lived"), client.WithLogger(quiet()),
		client.WithProfile(profile.Datacenter()), onState(states))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close(context.Background()) })
	if err := cs.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	first := awaitConnected(t, ctx, states)
	victim, other := n1, n2
	if first.ServerID == n2.id {
		victim, other = n2, n1
	}

	// Connected for 3 × RecordTTL (the record's own time to live is
	// RecordTTL rounded up, plus a second): the record stands throughout.
	until := time.Now().Add(3 * ttl)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(until) {
		<-tick.C
		if _, ok, err := other.b.GetSession(ctx, first.SessionID); err != nil || !ok {
			t.Fatalf("%v after connecting: the record of the connected session is gone (ok=%v, err=%v)", time.Since(until.Add(-3*ttl)).Round(time.Millisecond), ok, err)
		}
	}

	victim.kill()
	if c := awaitConnected(t, ctx, states); !c.Resumed || c.ServerID != other.id {
		t.Fatalf("after %s's death: %s resumed=%v (%v), want a resume on %s", victim.id, c.ServerID, c.Resumed, c.ResumeStatus, other.id)
	}
}

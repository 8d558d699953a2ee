package nats_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// TestClaimRace has two nodes claim one session's adoption at the same
// instant, both having read that no claim stands: exactly one wins, and
// the other is refused (ErrFenced) by the compare-and-set, having written
// nothing.
func TestClaimRace(t *testing.T) {
	t.Parallel()
	bs, _ := moveNodes(t, "A", "B")
	a, b := bs[0], bs[1]
	ctx := t.Context()
	fa, err := natsbroker.ReadFence(a, ctx, "s1")
	must(t, err)
	fb, err := natsbroker.ReadFence(b, ctx, "s1")
	must(t, err)
	ca, errA := natsbroker.ClaimAfter(a, ctx, "s1", "A", fa)
	_, errB := natsbroker.ClaimAfter(b, ctx, "s1", "B", fb)
	if errA != nil || !errors.Is(errB, broker.ErrFenced) {
		t.Fatalf("claims: A %v, B %v; want A's to win and B's to be fenced", errA, errB)
	}
	if _, err := b.Claim(ctx, "s1", "B"); !errors.Is(err, broker.ErrFenced) {
		t.Fatalf("B's claim after the race: %v, want ErrFenced (A's stands)", err)
	}
	must(t, a.Release(ctx, "s1", ca))
}

// TestClaimStandsUntilReleased: while a claim stands, every other claim is
// refused; once released, the next one wins, and the released claim can no
// longer be released.
func TestClaimStandsUntilReleased(t *testing.T) {
	t.Parallel()
	bs, _ := moveNodes(t, "A", "B")
	a, b := bs[0], bs[1]
	ctx := t.Context()
	ca, err := a.Claim(ctx, "s1", "A")
	must(t, err)
	if _, err := b.Claim(ctx, "s1", "B"); !errors.Is(err, broker.ErrFenced) {
		t.Fatalf("a claim while A's stands: %v, want ErrFenced", err)
	}
	if _, err := a.Claim(ctx, "s1", "A"); !errors.Is(err, broker.ErrFenced) {
		t.Fatalf("a second claim by A while its first stands: %v, want ErrFenced", err)
	}
	must(t, a.Release(ctx, "s1", ca))
	cb, err := b.Claim(ctx, "s1", "B")
	must(t, err)
	if err := a.Release(ctx, "s1", ca); !errors.Is(err, broker.ErrFenced) {
		t.Fatalf("releasing A's claim after B's: %v, want ErrFenced", err)
	}
	must(t, b.Release(ctx, "s1", cb))
}

// TestClaimLapses: a claim never released (its node died adopting) stops
// standing after 3 × Timeout, and its claimer learns from Release that
// another node claimed the session since.
func TestClaimLapses(t *testing.T) {
	t.Parallel()
	url := natstest.Start(t).URL()
	o := natsbroker.Options{Prefix: newPrefix(), MemoryStorage: true, Timeout: 400 * time.Millisecond, Heartbeat: 100 * time.Millisecond, Logger: quiet()}
	a, _ := nodeWith(t, url, o, "A")
	b, _ := nodeWith(t, url, o, "B")
	ctx := t.Context()
	start := time.Now()
	ca, err := a.Claim(ctx, "s1", "A")
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		_, err := b.Claim(ctx, "s1", "B")
		if err == nil {
			break
		}
		if !errors.Is(err, broker.ErrFenced) || time.Now().After(deadline) {
			t.Fatalf("B's claim: %v", err)
		}
		<-poll.C
	}
	if lapsed := time.Since(start); lapsed < 3*o.Timeout {
		t.Errorf("A's claim lapsed after %v, before 3 × Timeout", lapsed)
	}
	if err := a.Release(ctx, "s1", ca); !errors.Is(err, broker.ErrFenced) {
		t.Fatalf("releasing the lapsed claim: %v, want ErrFenced", err)
	}
}

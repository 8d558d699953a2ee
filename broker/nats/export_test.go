package nats

import (
	"context"
	"time"

	"github.com/tetherhq/tether/broker"
)

// SetGuardPeriod shortens how long b marks its messages to an address
// after parking one for it (see guardPeriod), so that a test can reach the
// end of it quickly. Call it before Start.
func SetGuardPeriod(b *Broker, d time.Duration) { b.guardPeriod = d }

// Fence is the last claim on a session's adoption, as read (see Claim).
type Fence = fenceState

// ReadFence reads the last claim on session id: the first half of Claim.
func ReadFence(b *Broker, ctx context.Context, id string) (Fence, error) { return b.readFence(ctx, id) }

// ClaimAfter claims session id for node if f is still the last claim: the
// second half of Claim.
func ClaimAfter(b *Broker, ctx context.Context, id, node string, f Fence) (uint64, error) {
	return b.claimAfter(ctx, id, node, f)
}

// ParkQuiet parks m as a publisher that found no node holding its target
// does, without poking the target: what a node does whose NATS server has
// not yet heard of the holder's subscription (its poke goes nowhere).
func ParkQuiet(b *Broker, ctx context.Context, m *broker.Message) (int, error) {
	return b.parkQuiet(ctx, m)
}

// Park parks m as a publisher that found no node holding its target does,
// poke included.
func Park(b *Broker, ctx context.Context, m *broker.Message) (int, error) {
	return b.park(ctx, m)
}

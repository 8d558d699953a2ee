package nats

import (
	"context"
	"time"
)

// SetGuardPeriod shortens b's guard period after a bind (see guardPeriod),
// so that a test can reach the end of it quickly. Call it before Start.
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

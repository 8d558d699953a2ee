package nats

import "time"

// SetGuardPeriod shortens b's guard period after a bind (see guardPeriod),
// so that a test can reach the end of it quickly. Call it before Start.
func SetGuardPeriod(b *Broker, d time.Duration) { b.guardPeriod = d }

package backoff

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"time"

	tetherbackoff "github.com/tetherhq/tether/backoff"
)

// Backoff produces full-jitter exponential delays for successive failed
// attempts: call n to [Backoff.Next] since the last reset (counting from
// zero) returns a uniformly random duration in
// [0, min(Cap, Base × Multiplier^n)).
//
// A Backoff is not safe for concurrent use: each reconnect loop owns one and
// calls it from a single goroutine. The same holds for the *rand.Rand it was
// given; do not share one source between Backoffs used concurrently.
type Backoff struct {
	cfg     tetherbackoff.Config
	rng     *rand.Rand
	attempt int
}

// New returns a Backoff for cfg at attempt zero, drawing from rng. A nil rng
// selects a PCG source seeded from crypto/rand, which is what production
// code should use; tests pass a deterministically seeded source. New returns
// the error of [tetherbackoff.Config.Validate] if cfg is invalid.
func New(cfg tetherbackoff.Config, rng *rand.Rand) (*Backoff, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		rng = newRand()
	}
	return &Backoff{cfg: cfg, rng: rng}, nil
}

// newRand returns a PCG source seeded with 128 bits from crypto/rand.
func newRand() *rand.Rand {
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // never returns an error (Go 1.24+)
	return rand.New(rand.NewPCG(
		binary.LittleEndian.Uint64(seed[:8]),
		binary.LittleEndian.Uint64(seed[8:]),
	))
}

// Next returns the delay before the next retry, uniform in
// [0, min(Cap, Base × Multiplier^n)) where n is [Backoff.Attempts], and then
// counts the attempt. Once the ceiling reaches Cap it stays there however
// many attempts follow.
func (b *Backoff) Next() time.Duration {
	d := time.Duration(b.rng.Int64N(int64(b.ceiling())))
	if b.attempt < math.MaxInt {
		b.attempt++
	}
	return d
}

// ceiling returns min(Cap, Base × Multiplier^attempt), the exclusive upper
// bound of the next delay. Computing in float64 cannot overflow: a huge
// power becomes +Inf, which compares above Cap.
func (b *Backoff) ceiling() time.Duration {
	c := float64(b.cfg.Base) * math.Pow(b.cfg.Multiplier, float64(b.attempt))
	if !(c < float64(b.cfg.Cap)) {
		return b.cfg.Cap
	}
	return min(time.Duration(c), b.cfg.Cap)
}

// Reset sets the attempt counter back to zero, so the next delay is drawn
// from [0, Base) again.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempts returns how many delays [Backoff.Next] has returned since the
// Backoff was created or last reset.
func (b *Backoff) Attempts() int { return b.attempt }

// ResetIfStable records that a session stayed connected for the given time.
// If that is at least [tetherbackoff.Config.ResetAfter] the session counts as
// healthy: the attempt counter is reset and ResetIfStable reports true.
// Otherwise the counter is left alone, so a backend that accepts and then
// drops sessions keeps backing off.
func (b *Backoff) ResetIfStable(connected time.Duration) bool {
	if connected < b.cfg.ResetAfter {
		return false
	}
	b.Reset()
	return true
}

// Wait sleeps for d and returns nil, or returns ctx.Err() as soon as ctx is
// done, whichever comes first. If ctx is already done it returns ctx.Err()
// at once, even for d <= 0; otherwise d <= 0 returns nil at once. The timer
// is stopped before Wait returns.
//
// Wait uses the standard time package, so it follows fake time under
// testing/synctest.
func Wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package backoff

import (
	"errors"
	"fmt"
	"time"
)

// Config is the reconnect backoff policy: exponential growth with full jitter
// (see the package documentation for the formula).
//
// The zero Config is not valid; start from [DefaultConfig] and override
// fields. A Config is a value: copying it is safe, and it holds no state, so
// one Config may be shared by any number of clients and goroutines.
type Config struct {
	// Base is the ceiling of the first retry's delay: the first retry after
	// a failure waits a random time in [0, Base). It must be greater than
	// zero. The current default value is 1 second.
	Base time.Duration

	// Cap is the largest ceiling the delay can grow to: once
	// Base × Multiplier^n reaches Cap, every further retry waits a random
	// time in [0, Cap). It must be at least Base. The current default value
	// is 30 seconds.
	Cap time.Duration

	// Multiplier is the factor by which the ceiling grows after each failed
	// attempt. It must be at least 1; 1 keeps the ceiling at Base. The
	// current default value is 2.
	Multiplier float64

	// ResetAfter is how long a session must stay connected, hearing from
	// the server, to count as healthy: when such a session ends, the
	// attempt counter is reset and the next retry is drawn from [0, Base)
	// again. A session that ends sooner counts as one more failed attempt.
	// Zero resets the counter after any session that was established. It
	// must not be negative. The current default value is 5 seconds: longer
	// than a backend that accepts streams and fails them at once takes to
	// fail them, short enough that a session cut again a few seconds after
	// it came back (by a second network fault, say) retries within Base,
	// not after a ceiling grown by the faults before.
	ResetAfter time.Duration
}

// DefaultConfig returns the default policy: Base 1s, Cap 30s, Multiplier 2
// and ResetAfter 5s. The ceilings of successive retries are therefore 1s,
// 2s, 4s, 8s, 16s, then 30s for every retry after that.
//
// Each call returns a fresh value, so changing it does not affect other
// callers.
func DefaultConfig() Config {
	return Config{
		Base:       time.Second,
		Cap:        30 * time.Second,
		Multiplier: 2,
		ResetAfter: 5 * time.Second,
	}
}

// Validate reports whether c is usable. The error lists every field that is
// out of range and says what to change; it is nil for a valid Config.
func (c Config) Validate() error {
	var errs []error
	if c.Base <= 0 {
		errs = append(errs, fmt.Errorf("backoff: Base is %v; set it above zero (the default is 1s)", c.Base))
	}
	if c.Cap < c.Base {
		errs = append(errs, fmt.Errorf("backoff: Cap (%v) is less than Base (%v); set Cap to at least Base", c.Cap, c.Base))
	}
	if !(c.Multiplier >= 1) { // also rejects NaN
		errs = append(errs, fmt.Errorf("backoff: Multiplier is %v; set it to 1 or more (1 keeps the delay ceiling at Base)", c.Multiplier))
	}
	if c.ResetAfter < 0 {
		errs = append(errs, fmt.Errorf("backoff: ResetAfter is %v; set it to zero or more (zero resets after any established session)", c.ResetAfter))
	}
	return errors.Join(errs...)
}

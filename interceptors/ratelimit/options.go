package ratelimit

import (
	"fmt"
	"time"
)

// DefaultMaxKeys is the default for [WithMaxKeys].
const DefaultMaxKeys = 1 << 16

// An Option configures a [Limiter]. Options are applied in order; a later
// one overrides an earlier one.
type Option interface {
	apply(*options)
}

type options struct {
	maxKeys int
	idle    time.Duration
	now     func() time.Time
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithMaxKeys bounds the number of keys, and so of buckets, the limiter
// holds. When a new key arrives at the bound, the least recently used key
// is dropped. The default is [DefaultMaxKeys]; n must be at least 1.
func WithMaxKeys(n int) Option {
	return optionFunc(func(o *options) { o.maxKeys = n })
}

// WithIdleTimeout sets how long a key may go unused before it is dropped.
// The default is the time an empty bucket takes to refill (burst/rate), or
// one minute if that is longer. A timeout shorter than the refill time
// loosens the limit: a dropped key comes back with a full bucket. d must be
// positive.
func WithIdleTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.idle = d })
}

// withClock sets the clock, for tests.
func withClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// evaluate returns fresh options with opts applied over the defaults and
// checks them. refill is the time an empty bucket takes to refill.
func evaluate(opts []Option, refill time.Duration) (*options, error) {
	o := &options{maxKeys: DefaultMaxKeys, idle: max(refill, time.Minute), now: time.Now}
	for _, opt := range opts {
		opt.apply(o)
	}
	if o.maxKeys < 1 {
		return nil, fmt.Errorf("ratelimit: max keys %d, want at least 1", o.maxKeys)
	}
	if o.idle <= 0 {
		return nil, fmt.Errorf("ratelimit: idle timeout %v, want > 0", o.idle)
	}
	return o, nil
}

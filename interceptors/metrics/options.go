package metrics

import (
	"fmt"
	"slices"
)

// DefaultBuckets returns the default histogram buckets of
// grpc_server_handling_seconds, in seconds: 10ms to 1s for unary calls and
// short streams, then 10s, 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h and 24h for
// sessions. Each call returns a new slice.
func DefaultBuckets() []float64 {
	return []float64{0.01, 0.1, 1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400}
}

// An Option configures [New]. Options are applied in order; a later one
// overrides an earlier one.
type Option interface {
	apply(*options)
}

type options struct {
	buckets []float64
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithBuckets sets the upper bounds, in seconds, of the
// grpc_server_handling_seconds buckets. They must be strictly increasing
// and there must be at least one. The default is [DefaultBuckets].
func WithBuckets(upperBounds ...float64) Option {
	bs := slices.Clone(upperBounds)
	return optionFunc(func(o *options) { o.buckets = bs })
}

// evaluate returns fresh options with opts applied over the defaults and
// checks them.
func evaluate(opts []Option) (*options, error) {
	o := &options{buckets: DefaultBuckets()}
	for _, opt := range opts {
		opt.apply(o)
	}
	if len(o.buckets) == 0 {
		return nil, fmt.Errorf("metrics: no histogram buckets")
	}
	for i := 1; i < len(o.buckets); i++ {
		if !(o.buckets[i-1] < o.buckets[i]) {
			return nil, fmt.Errorf("metrics: histogram buckets %v are not strictly increasing", o.buckets)
		}
	}
	return o, nil
}

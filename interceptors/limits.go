package interceptors

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/interceptors/ratelimit"
)

// callLimits is the rate limit of [Config]: an exemption, buckets per
// method prefix (MethodLimits) and the shared buckets (Rate) for every
// other method. It implements go-grpc-middleware's ratelimit.Limiter.
type callLimits struct {
	exempt  func(context.Context) bool // nil: no one
	shared  *ratelimit.Limiter         // nil: unlimited
	methods []methodLimit              // longest prefix first
}

// methodLimit is the limiter of the methods a prefix matches; nil is
// unlimited.
type methodLimit struct {
	prefix string
	l      *ratelimit.Limiter
}

// newCallLimits builds the limiters of cfg, which validate accepted.
func newCallLimits(cfg *Config) (*callLimits, error) {
	c := &callLimits{exempt: cfg.RateExempt}
	var err error
	if c.shared, err = newLimiter(cfg, Limit{cfg.Rate, cfg.Burst}); err != nil {
		return nil, err
	}
	for prefix, lim := range cfg.MethodLimits {
		l, err := newLimiter(cfg, lim)
		if err != nil {
			return nil, err
		}
		c.methods = append(c.methods, methodLimit{trimSlash(prefix), l})
	}
	slices.SortFunc(c.methods, func(a, b methodLimit) int { return len(b.prefix) - len(a.prefix) })
	return c, nil
}

func newLimiter(cfg *Config, l Limit) (*ratelimit.Limiter, error) {
	if !l.limited() {
		return nil, nil
	}
	return ratelimit.New(cfg.RateKey, l.Rate, l.Burst)
}

// Limit takes a token for the call in ctx from its principal's bucket of
// the call's method, unless the call is exempt or its method unlimited.
func (c *callLimits) Limit(ctx context.Context) error {
	if c.exempt != nil && c.exempt(ctx) {
		return nil
	}
	if l := c.forMethod(ctx); l != nil {
		return l.Limit(ctx)
	}
	return nil
}

// forMethod returns the limiter of the call's method: the longest
// MethodLimits prefix that matches it, else the shared one.
func (c *callLimits) forMethod(ctx context.Context) *ratelimit.Limiter {
	method, _ := grpc.Method(ctx)
	method = trimSlash(method)
	for _, m := range c.methods {
		if strings.HasPrefix(method, m.prefix) {
			return m.l
		}
	}
	return c.shared
}

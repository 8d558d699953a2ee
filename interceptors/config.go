package interceptors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Config configures [ServerOptions]. The zero Config is valid: metrics and
// logging to nowhere, no auth, no rate limit, recovery on.
type Config struct {
	// Logger receives the call log and recovered panics. nil discards.
	Logger *slog.Logger

	// Registerer is where the gRPC server metrics are registered. nil
	// registers nothing; the returned metrics.Server can be registered
	// later.
	Registerer prometheus.Registerer

	// AuthFunc authenticates a call, once per unary call or stream, and
	// returns the context the handler gets (usually carrying the
	// principal). Return a status error, such as Unauthenticated or
	// PermissionDenied: it reaches the client as it is. Any other error is
	// logged and becomes Unauthenticated "unauthenticated". A service that
	// implements go-grpc-middleware's auth.ServiceAuthFuncOverride is
	// authenticated by its override instead, whose errors are returned as
	// they are. nil means no authentication.
	AuthFunc func(ctx context.Context) (context.Context, error)

	// RateKey names the principal of a call for the rate limiter, from
	// the context AuthFunc returned. Calls with the same key share a
	// bucket; so do all calls for which it returns "". Required when Rate
	// is set.
	RateKey func(ctx context.Context) string

	// Rate is the average number of unary calls and stream opens per
	// second each principal may make. Zero, the default, turns the rate
	// limiter off, and so does rate.Inf. It must not be negative.
	Rate rate.Limit

	// Burst is how many calls a principal may make at once. It must be at
	// least 1 when Rate is set.
	Burst int

	// MethodLimits gives methods a per-principal rate of their own,
	// instead of Rate and Burst. A key is a prefix of full method names,
	// as in PublicMethods ("tether.v1.TetherService/Publish"; end it with
	// "/" for a whole service); the longest matching prefix wins. A call
	// to such a method takes a token from its own bucket only, never from
	// the shared one. A Limit whose Rate is zero or rate.Inf leaves its
	// methods unlimited. nil means none: every method shares Rate.
	MethodLimits map[string]Limit

	// RateExempt reports whether a call skips every rate limit, from the
	// context AuthFunc returned: meant for authenticated service
	// principals, such as a backend that publishes for many users
	// (auth.RateExempt reads the token file's rate_exempt). nil exempts
	// no one.
	RateExempt func(ctx context.Context) bool

	// PublicMethods are prefixes of full method names
	// ("package.Service/Method", a leading "/" is optional) that skip auth
	// and rate limiting. End a prefix with "/" to match a whole service. nil
	// means [DefaultPublicMethods]; an empty non-nil slice makes every
	// method private.
	PublicMethods []string
}

// DefaultPublicMethods returns the default [Config.PublicMethods]: the
// gRPC health service and both versions of server reflection. Each call
// returns a new slice.
func DefaultPublicMethods() []string {
	return []string{
		"grpc.health.v1.Health/",
		"grpc.reflection.v1.ServerReflection/",
		"grpc.reflection.v1alpha.ServerReflection/",
	}
}

// Limit is a per-principal call rate: Rate calls per second on average,
// in bursts of up to Burst. A zero Rate, or rate.Inf, means unlimited;
// otherwise Burst must be at least 1.
type Limit struct {
	Rate  rate.Limit
	Burst int
}

// limited reports whether l limits anything.
func (l Limit) limited() bool { return l.Rate != 0 && l.Rate != rate.Inf }

// check validates l, named name in the error.
func (l Limit) check(name string) error {
	if l.Rate < 0 || math.IsNaN(float64(l.Rate)) {
		return fmt.Errorf("interceptors: %s rate %v, want ≥ 0", name, l.Rate)
	}
	if l.limited() && l.Burst < 1 {
		return fmt.Errorf("interceptors: %s burst %d, want at least 1 when its rate is set", name, l.Burst)
	}
	return nil
}

// rateLimited reports whether cfg turns a rate limiter on.
func (cfg *Config) rateLimited() bool {
	if (Limit{cfg.Rate, cfg.Burst}).limited() {
		return true
	}
	for _, l := range cfg.MethodLimits {
		if l.limited() {
			return true
		}
	}
	return false
}

// validate checks cfg.
func (cfg *Config) validate() error {
	if err := (Limit{cfg.Rate, cfg.Burst}).check("Rate"); err != nil {
		return err
	}
	for prefix, l := range cfg.MethodLimits {
		if trimSlash(prefix) == "" {
			return fmt.Errorf("interceptors: empty MethodLimits prefix %q would match every method", prefix)
		}
		if err := l.check(fmt.Sprintf("MethodLimits[%q]", prefix)); err != nil {
			return err
		}
	}
	if cfg.rateLimited() && cfg.RateKey == nil {
		return errors.New("interceptors: a rate is set but RateKey is nil")
	}
	for _, p := range cfg.PublicMethods {
		if trimSlash(p) == "" {
			return fmt.Errorf("interceptors: empty public method prefix %q would make every method public", p)
		}
	}
	return nil
}

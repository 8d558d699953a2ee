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

// rateLimited reports whether cfg turns the rate limiter on.
func (cfg *Config) rateLimited() bool {
	return cfg.Rate != 0 && cfg.Rate != rate.Inf
}

// validate checks cfg.
func (cfg *Config) validate() error {
	if cfg.Rate < 0 || math.IsNaN(float64(cfg.Rate)) {
		return fmt.Errorf("interceptors: Rate %v, want ≥ 0", cfg.Rate)
	}
	if cfg.rateLimited() {
		if cfg.RateKey == nil {
			return errors.New("interceptors: Rate is set but RateKey is nil")
		}
		if cfg.Burst < 1 {
			return fmt.Errorf("interceptors: Burst %d, want at least 1 when Rate is set", cfg.Burst)
		}
	}
	for _, p := range cfg.PublicMethods {
		if trimSlash(p) == "" {
			return fmt.Errorf("interceptors: empty public method prefix %q would make every method public", p)
		}
	}
	return nil
}

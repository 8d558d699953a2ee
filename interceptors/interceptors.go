package interceptors

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/interceptors/logging"
	"github.com/tetherhq/tether/interceptors/metrics"
	"github.com/tetherhq/tether/interceptors/ratelimit"
	"github.com/tetherhq/tether/interceptors/recovery"
)

// ServerOptions returns the grpc.ServerOptions that install tether's
// interceptor chains (one unary, one stream) in the order described in
// the package documentation, and the server metrics. Call
// InitializeMetrics on the metrics after registering every service on the
// grpc.Server.
//
// It checks cfg and registers the metrics on cfg.Registerer, so calling it
// twice with one Registerer fails. It does no other I/O.
func ServerOptions(cfg Config) ([]grpc.ServerOption, *metrics.Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var limiter *callLimits
	if cfg.rateLimited() {
		var err error
		if limiter, err = newCallLimits(&cfg); err != nil {
			return nil, nil, err
		}
	}
	m, err := metrics.New(cfg.Registerer) // last: the only step with a side effect
	if err != nil {
		return nil, nil, err
	}

	private := privateMatcher(cfg.PublicMethods)
	unary := []grpc.UnaryServerInterceptor{m.UnaryServerInterceptor(), logging.UnaryServerInterceptor(logger)}
	stream := []grpc.StreamServerInterceptor{m.StreamServerInterceptor(), logging.StreamServerInterceptor(logger)}
	if cfg.AuthFunc != nil {
		authFunc := statusAuthFunc(cfg.AuthFunc, logger)
		unary = append(unary, selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(authFunc), private))
		stream = append(stream, selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(authFunc), private))
	}
	if limiter != nil {
		unary = append(unary, selector.UnaryServerInterceptor(ratelimit.UnaryServerInterceptor(limiter), private))
		stream = append(stream, selector.StreamServerInterceptor(ratelimit.StreamServerInterceptor(limiter), private))
	}
	unary = append(unary, recovery.UnaryServerInterceptor(recovery.WithLogger(logger)))
	stream = append(stream, recovery.StreamServerInterceptor(recovery.WithLogger(logger)))

	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, m, nil
}

// privateMatcher matches the methods that no prefix in public (nil: the
// defaults) starts.
func privateMatcher(public []string) selector.Matcher {
	if public == nil {
		public = DefaultPublicMethods()
	}
	prefixes := make([]string, len(public))
	for i, p := range public {
		prefixes[i] = trimSlash(p)
	}
	return selector.MatchFunc(func(_ context.Context, c middleware.CallMeta) bool {
		method := c.Service + "/" + c.Method
		for _, p := range prefixes {
			if strings.HasPrefix(method, p) {
				return false
			}
		}
		return true
	})
}

func trimSlash(s string) string { return strings.TrimPrefix(s, "/") }

// statusAuthFunc wraps f so that every error it returns is a status: a
// status error as it is, a context error as its status, and anything else,
// logged, as Unauthenticated, so that no internal detail reaches the
// client.
func statusAuthFunc(f func(context.Context) (context.Context, error), logger *slog.Logger) grpcauth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		newCtx, err := f(ctx)
		switch _, isStatus := status.FromError(err); {
		case err == nil:
			if newCtx == nil {
				newCtx = ctx
			}
			return newCtx, nil
		case isStatus:
			return nil, err
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return nil, status.FromContextError(err).Err()
		}
		method, _ := grpc.Method(ctx)
		logger.LogAttrs(ctx, slog.LevelWarn, "authentication failed",
			slog.String("grpc.method", method), slog.String("error", err.Error()))
		return nil, status.Error(codes.Unauthenticated, "unauthenticated")
	}
}

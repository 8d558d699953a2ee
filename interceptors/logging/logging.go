package logging

import (
	"context"
	"log/slog"

	grpclogging "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Adapter returns l as a go-grpc-middleware [grpclogging.Logger]. The
// middleware's levels are slog's levels, and its fields are slog's
// key-value pairs. A nil l discards.
func Adapter(l *slog.Logger) grpclogging.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return grpclogging.LoggerFunc(func(ctx context.Context, lvl grpclogging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// SessionCodeToLevel is the level of a session method's finish line:
// [grpclogging.LevelError] for Unknown, Internal, DataLoss and
// Unimplemented, which mean a bug, and [grpclogging.LevelInfo] for every
// other code, since a session ending is not itself a problem.
func SessionCodeToLevel(code codes.Code) grpclogging.Level {
	switch code {
	case codes.Unknown, codes.Internal, codes.DataLoss, codes.Unimplemented:
		return grpclogging.LevelError
	default:
		return grpclogging.LevelInfo
	}
}

// CallCodeToLevel is the level of the start and finish lines of a call
// that is not a session: [grpclogging.LevelDebug] for OK (so a busy node
// does not write two lines per Publish or health check unless asked to),
// and go-grpc-middleware's server default for every other code (Info for
// the caller's mistakes, Warn and Error for the server's).
func CallCodeToLevel(code codes.Code) grpclogging.Level {
	if code == codes.OK {
		return grpclogging.LevelDebug
	}
	return grpclogging.DefaultServerCodeToLevel(code)
}

// baseOptions are the go-grpc-middleware options every interceptor here
// uses: start and finish only, never payloads, and a readable duration.
func baseOptions(levels grpclogging.CodeToLevel) []grpclogging.Option {
	return []grpclogging.Option{
		grpclogging.WithLogOnEvents(grpclogging.StartCall, grpclogging.FinishCall),
		grpclogging.WithDurationField(grpclogging.DurationToDurationField),
		grpclogging.WithLevels(levels),
	}
}

// UnaryServerInterceptor returns a unary server interceptor that logs the
// start and the finish of each call to l (nil discards).
func UnaryServerInterceptor(l *slog.Logger, opts ...Option) grpc.UnaryServerInterceptor {
	o := evaluate(opts)
	logger := Adapter(l)
	plain := grpclogging.UnaryServerInterceptor(logger, baseOptions(CallCodeToLevel)...)
	session := grpclogging.UnaryServerInterceptor(logger, baseOptions(SessionCodeToLevel)...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if o.sessionMethods[info.FullMethod] {
			return session(ctx, req, info, handler)
		}
		return plain(ctx, req, info, handler)
	}
}

// StreamServerInterceptor returns a stream server interceptor that logs the
// start (at the first message received or sent) and the finish of each
// stream to l (nil discards).
func StreamServerInterceptor(l *slog.Logger, opts ...Option) grpc.StreamServerInterceptor {
	o := evaluate(opts)
	logger := Adapter(l)
	plain := grpclogging.StreamServerInterceptor(logger, baseOptions(CallCodeToLevel)...)
	session := grpclogging.StreamServerInterceptor(logger, baseOptions(SessionCodeToLevel)...)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if o.sessionMethods[info.FullMethod] {
			return session(srv, ss, info, handler)
		}
		return plain(srv, ss, info, handler)
	}
}

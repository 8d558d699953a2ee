package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	grpcrecovery "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClientMessage is the whole message of the status a client gets for a
// recovered panic. Nothing about the panic itself crosses the wire.
const ClientMessage = "internal error"

// UnaryServerInterceptor returns a unary server interceptor that recovers a
// panic in the handler (and in the interceptors inside it), logs it and
// returns an Internal status with [ClientMessage].
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	o := evaluate(opts)
	return grpcrecovery.UnaryServerInterceptor(grpcrecovery.WithRecoveryHandlerContext(Handler(o.logger)))
}

// StreamServerInterceptor returns a stream server interceptor that recovers
// a panic in the handler's goroutine (and in the interceptors inside it),
// logs it and ends the stream with an Internal status with [ClientMessage].
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	o := evaluate(opts)
	return grpcrecovery.StreamServerInterceptor(grpcrecovery.WithRecoveryHandlerContext(Handler(o.logger)))
}

// Handler returns the go-grpc-middleware recovery handler that the
// interceptors of this package use, for code that builds the v2 interceptors
// itself. It logs the panic value, the stack and the gRPC method to logger
// at [slog.LevelError] and returns status.Error(codes.Internal,
// [ClientMessage]). A nil logger discards.
//
// The handler must run in the deferred recover of the panicking goroutine
// (as the v2 interceptors call it), so that the stack it captures is the
// panic's.
func Handler(logger *slog.Logger) grpcrecovery.RecoveryHandlerFuncContext {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, p any) error {
		method, _ := grpc.Method(ctx)
		logger.LogAttrs(ctx, slog.LevelError, "recovered panic in gRPC handler",
			slog.String("grpc.method", method),
			slog.String("panic", fmt.Sprint(p)),
			slog.String("stack", string(debug.Stack())),
		)
		return status.Error(codes.Internal, ClientMessage)
	}
}

package ratelimit

import (
	"context"

	grpcratelimit "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// UnaryServerInterceptor returns a unary server interceptor that asks l
// before each call and rejects the call if l returns an error: a status
// error as it is, any other error as ResourceExhausted with its message.
func UnaryServerInterceptor(l grpcratelimit.Limiter) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := l.Limit(ctx); err != nil {
			return nil, toStatus(err)
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns a stream server interceptor that asks l
// once, when a stream opens, and rejects the stream as
// [UnaryServerInterceptor] rejects a call. Messages on an open stream are
// not limited.
func StreamServerInterceptor(l grpcratelimit.Limiter) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := l.Limit(ss.Context()); err != nil {
			return toStatus(err)
		}
		return handler(srv, ss)
	}
}

func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.ResourceExhausted, err.Error())
}

package logging_test

import (
	"context"
	"log/slog"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/interceptors/logging"
)

func Example() {
	// Drop the fields that change from run to run.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "grpc.start_time", "grpc.duration":
				return slog.Attr{}
			}
			return a
		},
	}))
	intercept := logging.UnaryServerInterceptor(logger)

	// In a server: grpc.NewServer(grpc.ChainUnaryInterceptor(..., intercept, ...)).
	info := &grpc.UnaryServerInfo{FullMethod: "/tether.v1.TetherService/Publish"}
	_, _ = intercept(context.Background(), nil, info, func(context.Context, any) (any, error) {
		return nil, status.Error(codes.NotFound, "no such topic")
	})
	// The start line, at Debug like a success, is below the handler's
	// level (Info).
	// Output:
	// level=INFO msg="finished call" protocol=grpc grpc.component=server grpc.service=tether.v1.TetherService grpc.method=Publish grpc.method_type=unary grpc.code=NotFound grpc.error="rpc error: code = NotFound desc = no such topic"
}

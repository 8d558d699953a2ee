package recovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/interceptors/recovery"
)

func Example() {
	// Keep only the message and the panic value, so the output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "stack", "grpc.method":
				return slog.Attr{}
			}
			return a
		},
	}))
	intercept := recovery.UnaryServerInterceptor(recovery.WithLogger(logger))

	// In a server: grpc.NewServer(grpc.ChainUnaryInterceptor(..., intercept)).
	info := &grpc.UnaryServerInfo{FullMethod: "/example.v1.Example/Do"}
	_, err := intercept(context.Background(), nil, info, func(context.Context, any) (any, error) {
		panic("secret detail")
	})
	st := status.Convert(err)
	fmt.Printf("client sees: %v %q\n", st.Code(), st.Message())
	// Output:
	// level=ERROR msg="recovered panic in gRPC handler" panic="secret detail"
	// client sees: Internal "internal error"
}

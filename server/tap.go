package server

import (
	"context"

	"google.golang.org/grpc/tap"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// cancelKey is the context key of a Connect stream's cancel func.
type cancelKey struct{}

// tapHandle returns the grpc.InTapHandle that GRPCServerOptions installs,
// running next (WithInTapHandle) first. It gives each Connect stream a
// context the server can cancel, which grpc-go offers no other way to do.
// With it, a stream's writer runs on the handler goroutine: should a Send
// stay stuck on a client that stopped reading after the stream ended,
// cancelling unblocks it. Without it, the handler must stay free to return
// (returning is what cancels the stream), and the writer needs a goroutine
// of its own.
func tapHandle(next tap.ServerInHandle) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if next != nil {
			var err error
			if ctx, err = next(ctx, info); err != nil {
				return ctx, err
			}
		}
		if info.FullMethodName != tetherv1.TetherService_Connect_FullMethodName {
			return ctx, nil
		}
		ctx, cancel := context.WithCancel(ctx)
		return context.WithValue(ctx, cancelKey{}, cancel), nil
	}
}

// streamCancel returns the cancel func tapHandle put on ctx, or nil when
// the server was registered without GRPCServerOptions.
func streamCancel(ctx context.Context) context.CancelFunc {
	cancel, _ := ctx.Value(cancelKey{}).(context.CancelFunc)
	return cancel
}

package ratelimit_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/interceptors/ratelimit"
)

type principalKey struct{}

// principal returns the principal an auth interceptor stored in ctx.
func principal(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

func Example() {
	limiter, err := ratelimit.New(principal, 1, 1) // 1 call per second, no burst
	if err != nil {
		panic(err)
	}
	// In a server, after the auth interceptor:
	_ = grpc.ChainStreamInterceptor(ratelimit.StreamServerInterceptor(limiter))
	_ = grpc.ChainUnaryInterceptor(ratelimit.UnaryServerInterceptor(limiter))

	alice := context.WithValue(context.Background(), principalKey{}, "alice")
	bob := context.WithValue(context.Background(), principalKey{}, "bob")
	fmt.Println(limiter.Limit(alice))
	fmt.Println(limiter.Limit(alice))
	fmt.Println(limiter.Limit(bob))
	// Output:
	// <nil>
	// rpc error: code = ResourceExhausted desc = too many calls for principal "alice": at most 1/s, retry after 1s
	// <nil>
}

package interceptors_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/interceptors"
)

func ExampleServerOptions() {
	type principal struct{}
	opts, m, err := interceptors.ServerOptions(interceptors.Config{
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(),
		AuthFunc: func(ctx context.Context) (context.Context, error) {
			token, err := grpcauth.AuthFromMD(ctx, "bearer") // Unauthenticated if absent
			if err != nil {
				return nil, err
			}
			return context.WithValue(ctx, principal{}, token), nil // a real check goes here
		},
		RateKey: func(ctx context.Context) string {
			p, _ := ctx.Value(principal{}).(string)
			return p
		},
		Rate:  5, // stream opens and unary calls per second and principal
		Burst: 10,
	})
	if err != nil {
		panic(err)
	}
	gs := grpc.NewServer(opts...)
	tetherv1.RegisterTetherServiceServer(gs, tetherv1.UnimplementedTetherServiceServer{})
	healthpb.RegisterHealthServer(gs, health.NewServer())
	m.InitializeMetrics(gs) // after registering every service

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	defer func() { gs.Stop(); <-served }()

	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()

	// Health is public; everything else needs credentials.
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)
	_, err = tetherv1.NewTetherServiceClient(cc).Publish(context.Background(), &tetherv1.PublishRequest{})
	fmt.Println(status.Code(err))
	// Output:
	// SERVING <nil>
	// Unauthenticated
}

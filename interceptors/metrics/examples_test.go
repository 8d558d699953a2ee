package metrics_test

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tetherhq/tether/interceptors/metrics"
)

func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	m.InitializeMetrics(gs) // after registering the services

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		fmt.Println(f.GetName(), len(f.GetMetric()))
	}
	// Output:
	// grpc_server_handled_total 51
	// grpc_server_handling_seconds 3
	// grpc_server_msg_received_total 3
	// grpc_server_msg_sent_total 3
	// grpc_server_started_total 3
}

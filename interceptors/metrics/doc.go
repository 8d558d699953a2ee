// Package metrics records Prometheus metrics for a gRPC server through
// go-grpc-middleware's providers/prometheus.
//
// [New] builds the standard server metrics (grpc_server_started_total,
// grpc_server_handled_total{grpc_code}, grpc_server_msg_received_total,
// grpc_server_msg_sent_total) plus the grpc_server_handling_seconds
// histogram, and registers them.
//
// # Handling time of a session
//
// The "handling time" of a stream is its whole lifetime, and tether's
// session stream lives for minutes to days. Prometheus' default buckets
// stop at 10s and would put every session in +Inf, so the histogram uses
// [DefaultBuckets], which run from 10ms to a day; override them with
// [WithBuckets]. Sessions open now are grpc_server_started_total minus
// grpc_server_handled_total for the session method.
//
// # Use
//
//	m, err := metrics.New(reg)
//	...
//	gs := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor(), ...),
//		grpc.ChainStreamInterceptor(m.StreamServerInterceptor(), ...))
//	tetherv1.RegisterTetherServiceServer(gs, ...)
//	m.InitializeMetrics(gs) // after registering every service
//
// Put the interceptors outermost, so that they count the calls rejected by
// the interceptors inside them (auth, rate limit) and see a recovered
// panic as Internal.
package metrics

package metrics

import (
	"fmt"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

// Server holds the metrics of one gRPC server. It is a
// [prometheus.Collector], and safe for concurrent use.
type Server struct {
	m *grpcprom.ServerMetrics
}

var _ prometheus.Collector = (*Server)(nil)

// New returns server metrics registered on reg. With a nil reg nothing is
// registered; register the returned [Server] yourself. Registering a
// second Server on the same registry fails, since the metric names clash.
func New(reg prometheus.Registerer, opts ...Option) (*Server, error) {
	o, err := evaluate(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{m: grpcprom.NewServerMetrics(
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(o.buckets)),
	)}
	if reg != nil {
		if err := reg.Register(s); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return s, nil
}

// UnaryServerInterceptor returns the interceptor that records unary calls.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return s.m.UnaryServerInterceptor()
}

// StreamServerInterceptor returns the interceptor that records streams.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return s.m.StreamServerInterceptor()
}

// InitializeMetrics creates every series of every method registered on srv
// (usually a *grpc.Server), at zero, so that they exist before the first
// call. Call it after registering all services on srv.
func (s *Server) InitializeMetrics(srv reflection.ServiceInfoProvider) {
	s.m.InitializeMetrics(srv)
}

// Describe implements [prometheus.Collector].
func (s *Server) Describe(ch chan<- *prometheus.Desc) { s.m.Describe(ch) }

// Collect implements [prometheus.Collector].
func (s *Server) Collect(ch chan<- prometheus.Metric) { s.m.Collect(ch) }

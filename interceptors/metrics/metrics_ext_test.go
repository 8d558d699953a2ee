package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/interceptors/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHistogramCoversHours(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = m.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x.v1.X/Do"},
		func(context.Context, any) (any, error) { return nil, status.Error(codes.Internal, "x") })

	if n := testutil.CollectAndCount(m, "grpc_server_handled_total"); n != 1 {
		t.Errorf("handled series = %d, want 1", n)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "grpc_server_handling_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		bounds := h.GetBucket()
		if last := bounds[len(bounds)-1].GetUpperBound(); last < (8 * time.Hour).Seconds() {
			t.Errorf("largest bucket %vs, want hours", last)
		}
		if first := bounds[0].GetUpperBound(); first > 1 {
			t.Errorf("smallest bucket %vs, want under a second", first)
		}
		if h.GetSampleCount() != 1 {
			t.Errorf("sample count %d, want 1", h.GetSampleCount())
		}
		return
	}
	t.Fatal("no grpc_server_handling_seconds")
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, buckets := range [][]float64{{}, {1, 1}, {10, 1}} {
		if _, err := metrics.New(nil, metrics.WithBuckets(buckets...)); err == nil {
			t.Errorf("New with buckets %v succeeded, want an error", buckets)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.WithBuckets(1, 2)); err != nil {
		t.Fatal(err)
	}
	_, err := metrics.New(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("second New on one registry: %v, want AlreadyRegisteredError", err)
	}
}

func TestNilRegistererRegistersNothing(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatalf("registering the Server yourself: %v", err)
	}
}

func TestDefaultBucketsFresh(t *testing.T) {
	t.Parallel()
	a := metrics.DefaultBuckets()
	a[0] = -1
	if metrics.DefaultBuckets()[0] == -1 {
		t.Fatal("DefaultBuckets shares its slice")
	}
}

package interceptors_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/interceptors"
	"github.com/tetherhq/tether/internal/tethertest"
)

// defaultTestTimeout bounds what must happen.
const defaultTestTimeout = 10 * time.Second

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type principalKey struct{}

func principalOf(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

// testAuth takes the bearer token as the principal name, except for two
// tokens: "denied" (PermissionDenied) and "broken" (a non-status error).
func testAuth(ctx context.Context) (context.Context, error) {
	token, err := grpcauth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, err // Unauthenticated
	}
	switch token {
	case "denied":
		return nil, status.Error(codes.PermissionDenied, "principal denied may not call this")
	case "broken":
		return nil, errors.New("token store at 10.0.0.7 unreachable")
	}
	return context.WithValue(ctx, principalKey{}, token), nil
}

// stub is a TetherService whose Publish panics for topic "panic" and whose
// Connect answers Hello with Welcome, Pong with Pong, and panics on Ping.
// Both fail with FailedPrecondition if auth put no principal in the
// context, which shows that the handler gets auth's context.
type stub struct {
	tetherv1.UnimplementedTetherServiceServer
}

func (stub) Publish(ctx context.Context, req *tetherv1.PublishRequest) (*tetherv1.PublishResponse, error) {
	if req.GetTopic() == "panic" {
		panic("publish exploded: secret detail")
	}
	if principalOf(ctx) == "" {
		return nil, status.Error(codes.FailedPrecondition, "no principal")
	}
	return &tetherv1.PublishResponse{Delivered: 1}, nil
}

func (stub) Connect(ss grpc.BidiStreamingServer[tetherv1.ConnectRequest, tetherv1.ConnectResponse]) error {
	if principalOf(ss.Context()) == "" {
		return status.Error(codes.FailedPrecondition, "no principal")
	}
	for {
		req, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		var resp *tetherv1.ConnectResponse
		switch {
		case req.GetHello() != nil:
			resp = &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Welcome{Welcome: &tetherv1.Welcome{}}}
		case req.GetPing() != nil:
			panic("connect exploded: secret detail")
		default:
			resp = &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{}}}
		}
		if err := ss.Send(resp); err != nil {
			return err
		}
	}
}

var (
	hello = &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{}}}
	ping  = &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{}}}
	pong  = &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{}}}
)

// harness is a gRPC server on 127.0.0.1 with the interceptors, the stub
// TetherService and the health service, and a client for both.
type harness struct {
	tether tetherv1.TetherServiceClient
	health healthpb.HealthClient
	reg    *prometheus.Registry
	logs   *tethertest.Output
	keys   *keyCounter
}

// newHarness starts a server with cfg, after setting its Logger,
// Registerer and RateKey (counting calls) and, if nil, its AuthFunc.
func newHarness(t *testing.T, cfg interceptors.Config) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), logs: tethertest.NewOutput(), keys: &keyCounter{n: map[string]int{}}}
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	cfg.Registerer = h.reg
	cfg.RateKey = h.keys.key
	if cfg.AuthFunc == nil {
		cfg.AuthFunc = testAuth
	}
	opts, m, err := interceptors.ServerOptions(cfg)
	if err != nil {
		t.Fatalf("ServerOptions: %v", err)
	}
	gs := grpc.NewServer(opts...)
	tetherv1.RegisterTetherServiceServer(gs, stub{})
	healthpb.RegisterHealthServer(gs, health.NewServer())
	m.InitializeMetrics(gs)

	cc := tethertest.ServeGRPC(t, gs)
	h.tether = tetherv1.NewTetherServiceClient(cc)
	h.health = healthpb.NewHealthClient(cc)
	return h
}

// ctxAs returns a context with a deadline that authenticates as token ("":
// no credentials).
func ctxAs(t *testing.T, token string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "bearer "+token)
	}
	return ctx
}

// handled returns grpc_server_handled_total for method and code.
func (h *harness) handled(t *testing.T, method string, code codes.Code) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_method"] == method && labels["grpc_code"] == code.String() {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no grpc_server_handled_total{grpc_method=%q,grpc_code=%q}", method, code)
	return 0
}

// finishLine returns the "finished call" log record of method with code.
func (h *harness) finishLine(t *testing.T, method string, code codes.Code) map[string]any {
	t.Helper()
	for _, r := range h.logs.JSONLines(t) {
		if r["msg"] == "finished call" && r["grpc.method"] == method && r["grpc.code"] == code.String() {
			return r
		}
	}
	t.Fatalf("no finished call log line for %s with %v in:\n%s", method, code, h.logs.String())
	return nil
}

// record returns the first log record with msg.
func (h *harness) record(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, r := range h.logs.JSONLines(t) {
		if r["msg"] == msg {
			return r
		}
	}
	t.Fatalf("no %q log line in:\n%s", msg, h.logs.String())
	return nil
}

// wantStatus fails unless err is a status with code and message.
func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || st.Message() != msg {
		t.Fatalf("err = %v, want %v %q", err, code, msg)
	}
}

// keyCounter counts the rate limiter's key lookups per key.
type keyCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (k *keyCounter) key(ctx context.Context) string {
	p := principalOf(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.n[p]++
	return p
}

func (k *keyCounter) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, v := range k.n {
		n += v
	}
	return n
}

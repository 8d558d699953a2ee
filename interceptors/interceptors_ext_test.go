package interceptors_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/interceptors"
	"github.com/tetherhq/tether/internal/tethertest"
)

// limited is the rate limit of most tests: 1/s, burst 1.
var limited = interceptors.Config{Rate: 1, Burst: 1}

// A handler panic is recovered innermost: the client gets Internal with no
// detail, and metrics and logging, further out, see Internal too.
func TestUnaryPanicIsInternalEverywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limited)
	_, err := h.tether.Publish(ctxAs(t, "alice"), &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "panic"}})
	wantStatus(t, err, codes.Internal, "internal error")

	if n := h.handled(t, "Publish", codes.Internal); n != 1 {
		t.Errorf("metrics: handled{Internal} = %v, want 1", n)
	}
	if line := h.finishLine(t, "Publish", codes.Internal); line["level"] != "ERROR" {
		t.Errorf("log: finish level %v, want ERROR", line["level"])
	}
	p := h.record(t, "recovered panic in gRPC handler")
	if p["panic"] != "publish exploded: secret detail" || p["grpc.method"] != tetherv1.TetherService_Publish_FullMethodName {
		t.Errorf("panic log = %v", p)
	}
	if stack, _ := p["stack"].(string); !strings.Contains(stack, "interceptors_test.stub.Publish") {
		t.Errorf("panic log has no stack through the handler:\n%s", stack)
	}
}

func TestStreamPanicIsInternalEverywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limited)
	stream, err := h.tether.Connect(ctxAs(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(ping); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.Internal, "internal error")

	if n := h.handled(t, "Connect", codes.Internal); n != 1 {
		t.Errorf("metrics: handled{Internal} = %v, want 1", n)
	}
	if line := h.finishLine(t, "Connect", codes.Internal); line["level"] != "ERROR" {
		t.Errorf("log: finish level %v, want ERROR", line["level"])
	}
	if p := h.record(t, "recovered panic in gRPC handler"); p["panic"] != "connect exploded: secret detail" {
		t.Errorf("panic log = %v", p)
	}
}

// Auth runs before the rate limiter (which never sees the rejected call)
// and inside metrics and logging (which do), and keeps its status.
func TestAuthRejectsBeforeRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limited)
	req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "t"}}

	for range 2 {
		_, err := h.tether.Publish(ctxAs(t, ""), req)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Publish without credentials: %v, want Unauthenticated", err)
		}
	}
	_, err := h.tether.Publish(ctxAs(t, "denied"), req)
	wantStatus(t, err, codes.PermissionDenied, "principal denied may not call this")
	_, err = h.tether.Publish(ctxAs(t, "broken"), req)
	wantStatus(t, err, codes.Unauthenticated, "unauthenticated") // the cause stays on the server

	stream, err := h.tether.Connect(ctxAs(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Connect without credentials: %v, want Unauthenticated", err)
	}

	if n := h.keys.total(); n != 0 {
		t.Errorf("rate limiter consulted %d times for rejected calls, want 0", n)
	}
	for _, c := range []struct {
		method string
		code   codes.Code
		want   float64
	}{
		{"Publish", codes.Unauthenticated, 3},
		{"Publish", codes.PermissionDenied, 1},
		{"Connect", codes.Unauthenticated, 1},
	} {
		if n := h.handled(t, c.method, c.code); n != c.want {
			t.Errorf("metrics: handled{%s,%v} = %v, want %v", c.method, c.code, n, c.want)
		}
		h.finishLine(t, c.method, c.code)
	}
	if r := h.record(t, "authentication failed"); !strings.Contains(r["error"].(string), "10.0.0.7") {
		t.Errorf("auth failure log = %v, want the cause", r)
	}

	// An authenticated call gets through, with auth's context.
	if _, err := h.tether.Publish(ctxAs(t, "alice"), req); err != nil {
		t.Fatalf("Publish as alice: %v", err)
	}
	if n := h.keys.total(); n != 1 {
		t.Errorf("rate limiter consulted %d times, want 1", n)
	}
}

// Health checks skip auth and the rate limiter.
func TestHealthIsPublic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limited)
	for range 3 { // more than the burst
		resp, err := h.health.Check(ctxAs(t, ""), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check without credentials: %v, %v", resp, err)
		}
	}
	watch, err := h.health.Watch(ctxAs(t, ""), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch without credentials: %v, %v", resp, err)
	}
	if n := h.keys.total(); n != 0 {
		t.Errorf("rate limiter consulted %d times for health, want 0", n)
	}
	if n := h.handled(t, "Check", codes.OK); n != 3 {
		t.Errorf("metrics: handled{Check,OK} = %v, want 3", n)
	}
}

// openSession opens a Connect stream, says Hello and waits for Welcome.
func openSession(t *testing.T, h *harness, token string) (tetherv1.TetherService_ConnectClient, error) {
	t.Helper()
	stream, err := h.tether.Connect(ctxAs(t, token))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(hello); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err == nil && resp.GetWelcome() == nil {
		t.Fatalf("first frame %v, want Welcome", resp)
	}
	return stream, err
}

func closeSession(t *testing.T, stream tetherv1.TetherService_ConnectClient) {
	t.Helper()
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after CloseSend: %v, want EOF", err)
	}
}

// The rate limiter counts stream opens per principal, not messages.
func TestRateLimitStreamOpensPerPrincipal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limited)
	first, err := openSession(t, h, "alice")
	if err != nil {
		t.Fatalf("alice's first stream: %v", err)
	}
	for range 5 { // messages on an open stream are not limited
		if err := first.Send(pong); err != nil {
			t.Fatal(err)
		}
		if resp, err := first.Recv(); err != nil || resp.GetPong() == nil {
			t.Fatalf("pong on an open stream: %v, %v", resp, err)
		}
	}

	_, err = openSession(t, h, "alice")
	st := status.Convert(err)
	const prefix = `too many calls for principal "alice": at most 1/s, retry after `
	if st.Code() != codes.ResourceExhausted || !strings.HasPrefix(st.Message(), prefix) {
		t.Fatalf("alice's second stream: %v, want ResourceExhausted %q…", err, prefix)
	}
	if len(st.Details()) != 1 {
		t.Errorf("details %v, want one RetryInfo", st.Details())
	} else if _, ok := st.Details()[0].(*errdetails.RetryInfo); !ok {
		t.Errorf("detail %T, want *errdetails.RetryInfo", st.Details()[0])
	}
	// Unary calls share alice's bucket.
	_, err = h.tether.Publish(ctxAs(t, "alice"), &tetherv1.PublishRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("alice's Publish: %v, want ResourceExhausted", err)
	}

	bob, err := openSession(t, h, "bob")
	if err != nil {
		t.Fatalf("bob's stream: %v, want it open", err)
	}
	closeSession(t, bob)
	closeSession(t, first)

	if n := h.handled(t, "Connect", codes.ResourceExhausted); n != 1 {
		t.Errorf("metrics: handled{Connect,ResourceExhausted} = %v, want 1", n)
	}
	if n := h.handled(t, "Connect", codes.OK); n != 2 {
		t.Errorf("metrics: handled{Connect,OK} = %v, want 2", n)
	}
	// Connect is a session method: its ends are logged at Info.
	if line := h.finishLine(t, "Connect", codes.ResourceExhausted); line["level"] != "INFO" {
		t.Errorf("log: finish level %v, want INFO", line["level"])
	}
	line := h.finishLine(t, "Connect", codes.OK)
	if d, _ := line["grpc.duration"].(string); d == "" {
		t.Errorf("log: finish line %v has no grpc.duration", line)
	}
}

func TestCustomPublicMethods(t *testing.T) {
	t.Parallel()
	cfg := limited
	cfg.PublicMethods = []string{"/tether.v1.TetherService/Publish"}
	h := newHarness(t, cfg)
	// Publish skips auth: the handler finds no principal.
	_, err := h.tether.Publish(ctxAs(t, ""), &tetherv1.PublishRequest{})
	wantStatus(t, err, codes.FailedPrecondition, "no principal")
	// Health is no longer public.
	_, err = h.health.Check(ctxAs(t, ""), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Check without credentials: %v, want Unauthenticated", err)
	}
}

func TestZeroConfig(t *testing.T) {
	t.Parallel()
	opts, m, err := interceptors.ServerOptions(interceptors.Config{})
	if err != nil || len(opts) != 2 || m == nil {
		t.Fatalf("ServerOptions(Config{}) = %v, %v, %v", opts, m, err)
	}
}

func TestServerOptionsRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  interceptors.Config
	}{
		{"rate without key", interceptors.Config{Rate: 1, Burst: 1}},
		{"rate without burst", interceptors.Config{Rate: 1, RateKey: principalOf}},
		{"negative rate", interceptors.Config{Rate: -1, Burst: 1, RateKey: principalOf}},
		{"empty public prefix", interceptors.Config{PublicMethods: []string{"/"}}},
	}
	for _, tt := range tests {
		if _, _, err := interceptors.ServerOptions(tt.cfg); err == nil {
			t.Errorf("%s: ServerOptions succeeded, want an error", tt.name)
		}
	}
	// rate.Inf turns the limiter off, so no key is needed.
	if _, _, err := interceptors.ServerOptions(interceptors.Config{Rate: rate.Inf}); err != nil {
		t.Errorf("Rate: rate.Inf: %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, _, err := interceptors.ServerOptions(interceptors.Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := interceptors.ServerOptions(interceptors.Config{Registerer: reg}); err == nil {
		t.Error("second ServerOptions on one registry succeeded, want an error")
	}
}

func TestRecoverGoroutine(t *testing.T) {
	t.Parallel()
	logs := tethertest.NewOutput()
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer interceptors.RecoverGoroutine(logger, "session writer")
		panic("writer exploded")
	}()
	<-done
	recs := logs.JSONLines(t)
	if len(recs) != 1 || recs[0]["where"] != "session writer" || recs[0]["panic"] != "writer exploded" {
		t.Fatalf("log = %v", recs)
	}
	if stack, _ := recs[0]["stack"].(string); !strings.Contains(stack, "TestRecoverGoroutine") {
		t.Errorf("stack does not reach the panicking function:\n%s", stack)
	}

	// No panic: nothing logged. A nil logger discards.
	func() { defer interceptors.RecoverGoroutine(logger, "quiet") }()
	func() {
		defer interceptors.RecoverGoroutine(nil, "nil logger")
		panic("discarded")
	}()
	if n := len(logs.JSONLines(t)); n != 1 {
		t.Errorf("%d records, want still 1", n)
	}
}

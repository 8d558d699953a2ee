package recovery_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/interceptors/recovery"
	"github.com/tetherhq/tether/internal/tethertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func checkRecovered(t *testing.T, err error, logs *tethertest.Output, panicValue, frame string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Internal || st.Message() != recovery.ClientMessage {
		t.Fatalf("err = %v, want Internal %q", err, recovery.ClientMessage)
	}
	if len(st.Details()) != 0 {
		t.Errorf("status has details %v, want none", st.Details())
	}
	recs := logs.JSONLines(t)
	if len(recs) != 1 {
		t.Fatalf("got %d log records, want 1: %v", len(recs), recs)
	}
	r := recs[0]
	if r["level"] != "ERROR" || r["panic"] != panicValue {
		t.Errorf("log record = %v, want level ERROR and panic %q", r, panicValue)
	}
	if stack, _ := r["stack"].(string); !strings.Contains(stack, frame) {
		t.Errorf("logged stack does not name the panicking function %s:\n%s", frame, stack)
	}
}

func panicUnary(context.Context, any) (any, error) { panic("boom unary") }

func panicStream(any, grpc.ServerStream) error { panic(errors.New("boom stream")) }

func TestUnaryPanic(t *testing.T) {
	t.Parallel()
	logs := tethertest.NewOutput()
	intercept := recovery.UnaryServerInterceptor(recovery.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	_, err := intercept(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/s/M"}, panicUnary)
	checkRecovered(t, err, logs, "boom unary", "recovery_test.panicUnary")
}

func TestStreamPanic(t *testing.T) {
	t.Parallel()
	logs := tethertest.NewOutput()
	intercept := recovery.StreamServerInterceptor(recovery.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	err := intercept(nil, fakeStream{ctx: context.Background()}, &grpc.StreamServerInfo{FullMethod: "/s/M"}, panicStream)
	checkRecovered(t, err, logs, "boom stream", "recovery_test.panicStream")
}

func TestNoPanicPassesThrough(t *testing.T) {
	t.Parallel()
	intercept := recovery.UnaryServerInterceptor() // nil logger: discards
	want := status.Error(codes.NotFound, "nope")
	resp, err := intercept(context.Background(), "req", &grpc.UnaryServerInfo{}, func(_ context.Context, req any) (any, error) {
		return req, want
	})
	if resp != "req" || !errors.Is(err, want) {
		t.Fatalf("got (%v, %v), want (req, %v)", resp, err, want)
	}
}

func TestHandlerNilLogger(t *testing.T) {
	t.Parallel()
	err := recovery.Handler(nil)(context.Background(), "x")
	if status.Code(err) != codes.Internal {
		t.Fatalf("err = %v, want Internal", err)
	}
}

package logging_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/interceptors/logging"
	"github.com/tetherhq/tether/internal/tethertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chattyStream receives and sends messages without error.
type chattyStream struct{ grpc.ServerStream }

func (chattyStream) Context() context.Context { return context.Background() }
func (chattyStream) RecvMsg(any) error        { return nil }
func (chattyStream) SendMsg(any) error        { return nil }

// runStream runs a stream handler that exchanges a few messages and then
// ends with err, and returns the log records.
func runStream(t *testing.T, fullMethod string, err error, opts ...logging.Option) []map[string]any {
	t.Helper()
	logs := tethertest.NewOutput()
	intercept := logging.StreamServerInterceptor(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts...)
	info := &grpc.StreamServerInfo{FullMethod: fullMethod, IsClientStream: true, IsServerStream: true}
	got := intercept(nil, chattyStream{}, info, func(_ any, ss grpc.ServerStream) error {
		for range 3 {
			if err := ss.RecvMsg(&tetherv1.ConnectRequest{}); err != nil {
				return err
			}
			if err := ss.SendMsg(&tetherv1.ConnectResponse{}); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond) // a measurable duration
		return err
	})
	if got != err {
		t.Fatalf("interceptor returned %v, want %v", got, err)
	}
	return logs.JSONLines(t)
}

func TestStreamLogsStartAndFinishOnly(t *testing.T) {
	t.Parallel()
	recs := runStream(t, tetherv1.TetherService_Connect_FullMethodName, nil)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2 (start, finish), payloads must not be logged: %v", len(recs), recs)
	}
	if recs[0]["msg"] != "started call" || recs[1]["msg"] != "finished call" {
		t.Fatalf("messages = %q, %q; want started call, finished call", recs[0]["msg"], recs[1]["msg"])
	}
	d, err := time.ParseDuration(recs[1]["grpc.duration"].(string))
	if err != nil || d < time.Millisecond {
		t.Errorf("grpc.duration = %v (%v), want a duration ≥ 1ms", recs[1]["grpc.duration"], err)
	}
}

func TestFinishLevels(t *testing.T) {
	t.Parallel()
	connect := tetherv1.TetherService_Connect_FullMethodName
	tests := []struct {
		name, method string
		code         codes.Code
		opts         []logging.Option
		want         string
	}{
		{"session ok", connect, codes.OK, nil, "INFO"},
		{"session heartbeat timeout", connect, codes.DeadlineExceeded, nil, "INFO"},
		{"session taken over", connect, codes.Aborted, nil, "INFO"},
		{"session draining", connect, codes.Unavailable, nil, "INFO"},
		{"session panic", connect, codes.Internal, nil, "ERROR"},
		{"other stream ok", "/x.v1.X/Watch", codes.OK, nil, "DEBUG"},
		{"other stream bad argument", "/x.v1.X/Watch", codes.InvalidArgument, nil, "INFO"},
		{"other stream timeout", "/x.v1.X/Watch", codes.DeadlineExceeded, nil, "WARN"},
		{"other stream internal", "/x.v1.X/Watch", codes.Internal, nil, "ERROR"},
		{"custom session", "/x.v1.X/Watch", codes.Unavailable, []logging.Option{logging.WithSessionMethods("/x.v1.X/Watch")}, "INFO"},
		{"no sessions", connect, codes.Unavailable, []logging.Option{logging.WithSessionMethods()}, "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.code != codes.OK {
				err = status.Error(tt.code, "end")
			}
			recs := runStream(t, tt.method, err, tt.opts...)
			fin := recs[len(recs)-1]
			if fin["msg"] != "finished call" || fin["level"] != tt.want || fin["grpc.code"] != tt.code.String() {
				t.Errorf("finish record = %v, want level %s code %v", fin, tt.want, tt.code)
			}
		})
	}
}

func TestUnarySessionLevels(t *testing.T) {
	t.Parallel()
	logs := tethertest.NewOutput()
	l := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	intercept := logging.UnaryServerInterceptor(l, logging.WithSessionMethods("/x.v1.X/Long"))
	for _, m := range []string{"/x.v1.X/Long", "/x.v1.X/Short"} {
		_, _ = intercept(context.Background(), &tetherv1.PublishRequest{}, &grpc.UnaryServerInfo{FullMethod: m},
			func(context.Context, any) (any, error) { return nil, status.Error(codes.Unavailable, "x") })
	}
	recs := logs.JSONLines(t)
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4: %v", len(recs), recs)
	}
	if recs[1]["level"] != "INFO" || recs[3]["level"] != "WARN" {
		t.Errorf("finish levels = %v, %v; want INFO (session), WARN", recs[1]["level"], recs[3]["level"])
	}
	if recs[0]["level"] != "INFO" || recs[2]["level"] != "DEBUG" {
		t.Errorf("start levels = %v, %v; want INFO (session), DEBUG", recs[0]["level"], recs[2]["level"])
	}
	for _, r := range recs {
		if _, ok := r["grpc.request.content"]; ok {
			t.Errorf("payload logged: %v", r)
		}
	}
}

func TestAdapterNil(t *testing.T) {
	t.Parallel()
	logging.Adapter(nil).Log(context.Background(), 0, "discarded")
}

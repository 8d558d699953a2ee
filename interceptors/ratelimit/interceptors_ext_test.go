package ratelimit_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/interceptors/ratelimit"
)

type limiterFunc func(context.Context) error

func (f limiterFunc) Limit(ctx context.Context) error { return f(ctx) }

type ctxStream struct{ grpc.ServerStream }

func (ctxStream) Context() context.Context { return context.Background() }

func TestInterceptorErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"allowed", nil, codes.OK, ""},
		{"status kept", status.Error(codes.ResourceExhausted, "too many calls for principal \"x\""), codes.ResourceExhausted, "too many calls for principal \"x\""},
		{"other status kept", status.Error(codes.Unavailable, "down"), codes.Unavailable, "down"},
		{"plain error", errors.New("slow down"), codes.ResourceExhausted, "slow down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			l := limiterFunc(func(context.Context) error { calls++; return tt.err })
			called := false
			_, uerr := ratelimit.UnaryServerInterceptor(l)(context.Background(), nil, &grpc.UnaryServerInfo{},
				func(context.Context, any) (any, error) { called = true; return nil, nil })
			serr := ratelimit.StreamServerInterceptor(l)(nil, ctxStream{}, &grpc.StreamServerInfo{},
				func(any, grpc.ServerStream) error { return nil })
			for _, err := range []error{uerr, serr} {
				st := status.Convert(err)
				if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
					t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
				}
			}
			if called != (tt.err == nil) || calls != 2 {
				t.Errorf("handler called %v, limiter asked %d times", called, calls)
			}
		})
	}
}

package client

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/backoff"
)

// TestSendRetryBounds runs refusals of one message in fake time: a final
// code fails at once, a retryable one after MaxAttempts sends or before
// Within has passed, whichever comes first, with each delay below Cap.
func TestSendRetryBounds(t *testing.T) {
	t.Parallel()
	unavailable := status.Error(codes.Unavailable, "route failed")
	every := func(d time.Duration) backoff.Config { return backoff.Config{Base: d, Cap: d, Multiplier: 1} }
	for _, tc := range []struct {
		name         string
		r            SendRetry
		err          error
		wantAttempts int // 0: any
	}{
		{"final code", DefaultSendRetry(), status.Error(codes.PermissionDenied, "no"), 1},
		{"not a status", DefaultSendRetry(), errors.New("odd"), 1},
		{"attempts bound", SendRetry{MaxAttempts: 4, Within: time.Hour, Backoff: every(time.Second)}, unavailable, 4},
		{"one attempt", SendRetry{MaxAttempts: 1, Within: time.Hour, Backoff: every(time.Second)}, unavailable, 1},
		{"time bound", SendRetry{MaxAttempts: 1 << 20, Within: 10 * time.Second, Backoff: every(3 * time.Second)}, unavailable, 0},
		{"defaults", DefaultSendRetry(), status.Error(codes.NotFound, "nobody"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				p := &pending{}
				start := time.Now()
				for {
					d, err := tc.r.nextRetry(p, tc.err)
					if err == nil {
						if d < 0 || d >= tc.r.Backoff.Cap {
							t.Fatalf("delay %v outside [0, %v)", d, tc.r.Backoff.Cap)
						}
						time.Sleep(d)
						continue
					}
					var se *SendError
					if !errors.As(err, &se) || !errors.Is(err, tc.err) {
						t.Fatalf("failed with %v; want a SendError wrapping %v", err, tc.err)
					}
					if tc.wantAttempts != 0 && se.Attempts != tc.wantAttempts {
						t.Fatalf("failed after %d attempts, want %d", se.Attempts, tc.wantAttempts)
					}
					if se.Attempts > tc.r.MaxAttempts || time.Since(start) > tc.r.Within {
						t.Fatalf("failed after %d attempts and %v; the bound is %d within %v", se.Attempts, time.Since(start), tc.r.MaxAttempts, tc.r.Within)
					}
					return
				}
			})
		})
	}
}

func TestSendRetryValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultSendRetry().Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := New(WithAddrs("127.0.0.1:1"), WithSendRetry(SendRetry{}))
	if err == nil {
		t.Fatal("New accepted a zero SendRetry")
	}
	for _, want := range []string{"WithSendRetry", "MaxAttempts is 0", "Within is 0s", "Base is 0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

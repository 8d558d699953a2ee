package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type keyCtx struct{}

func withKey(k string) context.Context { return context.WithValue(context.Background(), keyCtx{}, k) }

func keyOf(ctx context.Context) string { k, _ := ctx.Value(keyCtx{}).(string); return k }

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestLimiter(t *testing.T, r rate.Limit, burst int, opts ...Option) (*Limiter, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	l, err := New(keyOf, r, burst, append([]Option{withClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func mustAllow(t *testing.T, l *Limiter, key string) {
	t.Helper()
	if err := l.Limit(withKey(key)); err != nil {
		t.Fatalf("Limit(%q) = %v, want nil", key, err)
	}
}

// mustReject checks that key is rejected and returns the RetryInfo delay.
func mustReject(t *testing.T, l *Limiter, key string) time.Duration {
	t.Helper()
	err := l.Limit(withKey(key))
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		t.Fatalf("Limit(%q) = %v, want ResourceExhausted", key, err)
	}
	prefix := fmt.Sprintf("too many calls for principal %q: at most ", key)
	if !strings.HasPrefix(st.Message(), prefix) || !strings.Contains(st.Message(), "/s, retry after ") {
		t.Errorf("message %q, want %q…/s, retry after …", st.Message(), prefix)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("no RetryInfo in %v", st.Details())
	return 0
}

func TestLimitPerKey(t *testing.T) {
	t.Parallel()
	l, clock := newTestLimiter(t, 1, 1)
	mustAllow(t, l, "alice")
	if d := mustReject(t, l, "alice"); d != time.Second {
		t.Errorf("retry delay %v, want 1s", d)
	}
	mustAllow(t, l, "bob") // another key has its own bucket
	clock.Advance(500 * time.Millisecond)
	if d := mustReject(t, l, "alice"); d != 500*time.Millisecond {
		t.Errorf("retry delay %v, want 500ms", d)
	}
	// The rejected calls took no token: the bucket is full again 1s after
	// the only allowed call.
	clock.Advance(500 * time.Millisecond)
	mustAllow(t, l, "alice")
}

func TestLimitMessage(t *testing.T) {
	t.Parallel()
	l, clock := newTestLimiter(t, 0.5, 2)
	mustAllow(t, l, "svc-a")
	mustAllow(t, l, "svc-a")
	clock.Advance(250 * time.Millisecond)
	err := l.Limit(withKey("svc-a"))
	const want = `too many calls for principal "svc-a": at most 0.5/s, retry after 1.8s`
	if got := status.Convert(err).Message(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestIdleEviction(t *testing.T) {
	t.Parallel()
	l, clock := newTestLimiter(t, 1, 1, WithIdleTimeout(time.Minute))
	mustAllow(t, l, "a")
	clock.Advance(30 * time.Second)
	mustAllow(t, l, "b")
	clock.Advance(31 * time.Second) // a idle 61s, b 31s
	mustAllow(t, l, "c")
	if n := l.Len(); n != 2 {
		t.Errorf("Len = %d after a went idle, want 2 (b, c)", n)
	}
	clock.Advance(2 * time.Minute)
	mustAllow(t, l, "d")
	if n := l.Len(); n != 1 {
		t.Errorf("Len = %d, want 1 (d)", n)
	}
}

func TestDefaultIdleIsAtLeastRefill(t *testing.T) {
	t.Parallel()
	l, clock := newTestLimiter(t, rate.Every(time.Hour), 3)
	for range 3 {
		mustAllow(t, l, "slow")
	}
	clock.Advance(2 * time.Hour) // idle, but the bucket has not refilled
	mustAllow(t, l, "other")
	mustAllow(t, l, "slow")
	mustAllow(t, l, "slow")
	mustReject(t, l, "slow") // not evicted: still limited
}

func TestMaxKeysEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, 1, 1, WithMaxKeys(2))
	mustAllow(t, l, "a")
	mustAllow(t, l, "b")
	mustReject(t, l, "a") // a is now the most recently used
	mustAllow(t, l, "c")  // drops b
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	mustReject(t, l, "a") // kept its empty bucket
	mustAllow(t, l, "b")  // came back with a full bucket
}

func TestBoundedUnderConcurrency(t *testing.T) {
	t.Parallel()
	l, err := New(keyOf, rate.Inf, 1, WithMaxKeys(16))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if err := l.Limit(withKey(fmt.Sprint(g, "-", i))); err != nil {
					t.Errorf("Limit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 16 {
		t.Errorf("Len = %d, want ≤ 16", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		key   func(context.Context) string
		r     rate.Limit
		burst int
		opts  []Option
	}{
		{"nil key", nil, 1, 1, nil},
		{"zero rate", keyOf, 0, 1, nil},
		{"negative rate", keyOf, -1, 1, nil},
		{"NaN rate", keyOf, rate.Limit(math.NaN()), 1, nil},
		{"zero burst", keyOf, 1, 0, nil},
		{"zero max keys", keyOf, 1, 1, []Option{WithMaxKeys(0)}},
		{"zero idle", keyOf, 1, 1, []Option{WithIdleTimeout(0)}},
	}
	for _, tt := range tests {
		if _, err := New(tt.key, tt.r, tt.burst, tt.opts...); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
	}
}

func TestRefillTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    rate.Limit
		n    int
		want time.Duration
	}{
		{1, 1, time.Second},
		{2, 5, 2500 * time.Millisecond},
		{rate.Inf, 5, 0},
		{rate.Limit(1e-30), 1, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := refillTime(tt.r, tt.n); got != tt.want {
			t.Errorf("refillTime(%v, %d) = %v, want %v", tt.r, tt.n, got, tt.want)
		}
	}
}

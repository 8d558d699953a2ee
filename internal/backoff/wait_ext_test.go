package backoff_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	tetherbackoff "github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/internal/backoff"
)

// The Wait tests run in synctest bubbles: time is fake, so "after exactly d"
// is exact and a 90s wait costs nothing.

func TestWaitSleepsExactlyD(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{time.Nanosecond, 250 * time.Millisecond, 90 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if err := backoff.Wait(t.Context(), d); err != nil {
				t.Fatalf("Wait(%v) = %v, want nil", d, err)
			}
			if got := time.Since(start); got != d {
				t.Fatalf("Wait(%v) returned after %v", d, got)
			}
		})
	}
}

func TestWaitDoesNotReturnEarly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const d = 5 * time.Second
		done := make(chan error, 1)
		go func() { done <- backoff.Wait(t.Context(), d) }()

		time.Sleep(d - time.Nanosecond)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Wait(%v) returned %v a nanosecond early", d, err)
		default:
		}

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Wait(%v) = %v, want nil", d, err)
			}
		default:
			t.Fatalf("Wait(%v) still blocked after %v", d, d)
		}
	})
}

func TestWaitContextEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		d       time.Duration
		want    error
		elapsed time.Duration
	}{
		{
			name: "canceled mid-wait",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(parent)
				time.AfterFunc(2*time.Second, cancel)
				return ctx, cancel
			},
			d: time.Hour, want: context.Canceled, elapsed: 2 * time.Second,
		},
		{
			name: "deadline mid-wait",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(parent, 3*time.Second)
			},
			d: time.Minute, want: context.DeadlineExceeded, elapsed: 3 * time.Second,
		},
		{
			name: "already canceled",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(parent)
				cancel()
				return ctx, cancel
			},
			d: time.Second, want: context.Canceled, elapsed: 0,
		},
		{
			name: "already canceled, zero wait",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(parent)
				cancel()
				return ctx, cancel
			},
			d: 0, want: context.Canceled, elapsed: 0,
		},
		{
			name: "zero wait",
			ctx:  context.WithCancel,
			d:    0, want: nil, elapsed: 0,
		},
		{
			name: "negative wait",
			ctx:  context.WithCancel,
			d:    -time.Second, want: nil, elapsed: 0,
		},
		{
			name: "deadline after the wait",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(parent, time.Hour)
			},
			d: time.Second, want: nil, elapsed: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				start := time.Now()
				err := backoff.Wait(ctx, tt.d)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("Wait(ctx, %v) = %v, want %v", tt.d, err, tt.want)
				}
				if err != nil && err != ctx.Err() {
					t.Fatalf("Wait(ctx, %v) = %v, want ctx.Err() = %v", tt.d, err, ctx.Err())
				}
				if got := time.Since(start); got != tt.elapsed {
					t.Fatalf("Wait(ctx, %v) returned after %v, want %v", tt.d, got, tt.elapsed)
				}
			})
		})
	}
}

// TestReconnectLoop drives a Backoff and Wait the way the client's
// reconnect loop does, in fake time: six failures in a row wait exactly
// the sum of the delays, a stable session resets the counter, and
// cancellation ends the wait.
func TestReconnectLoop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := tetherbackoff.DefaultConfig()
		b := mustNew(t, cfg, seeded(8, 0))
		oracle := mustNew(t, cfg, seeded(8, 0)) // same seed: the same delays

		start := time.Now()
		var want time.Duration
		for range 6 {
			want += oracle.Next()
			if err := backoff.Wait(t.Context(), b.Next()); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != want {
			t.Fatalf("six retries took %v of fake time, want %v", got, want)
		}

		if b.ResetIfStable(cfg.ResetAfter - time.Second) {
			t.Fatal("a session shorter than ResetAfter reset the backoff")
		}
		if !b.ResetIfStable(cfg.ResetAfter) {
			t.Fatal("a session of ResetAfter did not reset the backoff")
		}
		start = time.Now()
		if err := backoff.Wait(t.Context(), b.Next()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got >= cfg.Base {
			t.Fatalf("first retry after a stable session waited %v, want under Base %v", got, cfg.Base)
		}

		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Millisecond, cancel)
		for range 20 { // ceiling reaches Cap; the first Wait longer than 1ms is cut short
			if err := backoff.Wait(ctx, b.Next()); err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Wait = %v, want context.Canceled", err)
				}
				return
			}
		}
		t.Fatal("the reconnect loop ignored cancellation")
	})
}

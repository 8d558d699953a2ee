package backoff

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	tetherbackoff "github.com/tetherhq/tether/backoff"
)

// TestCeiling pins the exact ceilings min(Cap, Base×Multiplier^n), including
// a fractional multiplier, and checks that the ceiling never decreases and
// stays at Cap once it gets there.
func TestCeiling(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name string
		cfg  tetherbackoff.Config
		want []time.Duration // ceilings for attempts 0, 1, 2, ...
	}{
		{"default", tetherbackoff.DefaultConfig(), []time.Duration{
			1000 * ms, 2000 * ms, 4000 * ms, 8000 * ms, 16000 * ms, 30000 * ms, 30000 * ms,
		}},
		{"multiplier 1.5", tetherbackoff.Config{Base: 250 * ms, Cap: time.Second, Multiplier: 1.5}, []time.Duration{
			250 * ms, 375 * ms, 562500 * time.Microsecond, 843750 * time.Microsecond, time.Second, time.Second,
		}},
		{"multiplier 1", tetherbackoff.Config{Base: 300 * ms, Cap: time.Second, Multiplier: 1}, []time.Duration{
			300 * ms, 300 * ms, 300 * ms,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := New(tt.cfg, rand.New(rand.NewPCG(5, 0)))
			if err != nil {
				t.Fatal(err)
			}
			for n, want := range tt.want {
				if got := b.ceiling(); got != want {
					t.Fatalf("ceiling at attempt %d = %v, want %v", n, got, want)
				}
				b.Next()
			}
		})
	}
}

func TestCeilingStaysAtCap(t *testing.T) {
	t.Parallel()
	for _, mult := range []float64{1.01, 1.6, 2, 10, 1e300, math.Inf(1)} {
		cfg := tetherbackoff.Config{Base: time.Millisecond, Cap: time.Minute, Multiplier: mult}
		b, err := New(cfg, rand.New(rand.NewPCG(6, 0)))
		if err != nil {
			t.Fatal(err)
		}
		prev, reached := time.Duration(0), false
		for n := range 2000 {
			c := b.ceiling()
			switch {
			case c < prev:
				t.Fatalf("multiplier %v: ceiling fell from %v to %v at attempt %d", mult, prev, c, n)
			case c > cfg.Cap:
				t.Fatalf("multiplier %v: ceiling %v above Cap at attempt %d", mult, c, n)
			case reached && c != cfg.Cap:
				t.Fatalf("multiplier %v: ceiling left Cap (%v) at attempt %d", mult, c, n)
			}
			reached = reached || c == cfg.Cap
			prev = c
			b.Next()
		}
		if !reached {
			t.Fatalf("multiplier %v: ceiling never reached Cap", mult)
		}
		b.Reset()
		if got := b.ceiling(); got != cfg.Base {
			t.Fatalf("multiplier %v: ceiling after Reset = %v, want Base %v", mult, got, cfg.Base)
		}
	}
}

// TestAttemptCounterSaturates checks that the counter cannot wrap around to
// a negative attempt number however long a client keeps failing.
func TestAttemptCounterSaturates(t *testing.T) {
	t.Parallel()
	cfg := tetherbackoff.DefaultConfig()
	b, err := New(cfg, rand.New(rand.NewPCG(7, 0)))
	if err != nil {
		t.Fatal(err)
	}
	b.attempt = math.MaxInt - 1
	for range 3 {
		if d := b.Next(); d < 0 || d >= cfg.Cap {
			t.Fatalf("Next() = %v, want in [0, %v)", d, cfg.Cap)
		}
	}
	if got := b.Attempts(); got != math.MaxInt {
		t.Fatalf("Attempts() = %d, want math.MaxInt", got)
	}
}

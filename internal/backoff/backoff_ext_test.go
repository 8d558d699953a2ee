package backoff_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	tetherbackoff "github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/internal/backoff"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seeded returns a deterministic source for client i of a simulated fleet.
func seeded(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(i)))
}

func mustNew(t *testing.T, cfg tetherbackoff.Config, rng *rand.Rand) *backoff.Backoff {
	t.Helper()
	b, err := backoff.New(cfg, rng)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return b
}

// wantCeiling computes min(Cap, Base × m^n) in saturating integer arithmetic,
// independently of the float64 code under test. m must be a whole number.
func wantCeiling(cfg tetherbackoff.Config, n int) time.Duration {
	m := time.Duration(cfg.Multiplier)
	c := cfg.Base
	for range n {
		if m > 1 && c > cfg.Cap/m {
			return cfg.Cap
		}
		c *= m
	}
	return min(c, cfg.Cap)
}

// boundConfigs all have whole-number multipliers, so wantCeiling is exact.
var boundConfigs = []struct {
	name string
	cfg  tetherbackoff.Config
}{
	{"default", tetherbackoff.DefaultConfig()},
	{"base 250ms", tetherbackoff.Config{Base: 250 * time.Millisecond, Cap: 30 * time.Second, Multiplier: 2}},
	{"multiplier 3", tetherbackoff.Config{Base: time.Millisecond, Cap: time.Hour, Multiplier: 3}},
	{"multiplier 10", tetherbackoff.Config{Base: time.Millisecond, Cap: time.Minute, Multiplier: 10}},
	{"multiplier 1", tetherbackoff.Config{Base: 500 * time.Millisecond, Cap: time.Minute, Multiplier: 1}},
	{"cap equals base", tetherbackoff.Config{Base: time.Second, Cap: time.Second, Multiplier: 2}},
	// Base×2^n passes math.MaxInt64 nanoseconds at attempt 34.
	{"cap max duration", tetherbackoff.Config{Base: time.Second, Cap: math.MaxInt64, Multiplier: 2}},
}

// TestNextFullJitterBounds checks, for attempts 0 through 40, that every
// delay lies in [0, min(Cap, Base×Multiplier^n)), and that the draws cover
// that interval (full jitter: near zero as well as near the ceiling). It
// also checks that the ceiling reaches Cap and stays there, and that Reset
// goes back to Base.
func TestNextFullJitterBounds(t *testing.T) {
	t.Parallel()
	const (
		clients  = 200 // P(max of 200 draws < 0.9 ceiling) = 0.9^200 ≈ 7e-10
		attempts = 41
	)
	for _, tt := range boundConfigs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			top := tt.cfg.Cap // the ceiling reaches Cap within 40 attempts…
			if tt.cfg.Multiplier == 1 {
				top = tt.cfg.Base // …unless it never grows
			}
			if got := wantCeiling(tt.cfg, attempts-1); got != top {
				t.Fatalf("test setup: ceiling at attempt %d = %v, want %v", attempts-1, got, top)
			}
			lo := make([]time.Duration, attempts+1)
			hi := make([]time.Duration, attempts+1)
			for i := range lo {
				lo[i] = math.MaxInt64
			}
			record := func(slot int, d, ceiling time.Duration) {
				if d < 0 || d >= ceiling {
					t.Fatalf("slot %d: Next() = %v, want in [0, %v)", slot, d, ceiling)
				}
				lo[slot], hi[slot] = min(lo[slot], d), max(hi[slot], d)
			}
			for c := range clients {
				b := mustNew(t, tt.cfg, seeded(1, c))
				for n := range attempts {
					if got := b.Attempts(); got != n {
						t.Fatalf("Attempts() = %d before call %d, want %d", got, n, n)
					}
					record(n, b.Next(), wantCeiling(tt.cfg, n))
				}
				b.Reset()
				if got := b.Attempts(); got != 0 {
					t.Fatalf("Attempts() after Reset = %d, want 0", got)
				}
				record(attempts, b.Next(), tt.cfg.Base) // restarts at Base
			}
			for slot := range lo {
				ceiling := tt.cfg.Base
				if slot < attempts {
					ceiling = wantCeiling(tt.cfg, slot)
				}
				if float64(hi[slot]) < 0.9*float64(ceiling) {
					t.Errorf("slot %d: largest of %d delays = %v, want near the ceiling %v", slot, clients, hi[slot], ceiling)
				}
				if float64(lo[slot]) > 0.1*float64(ceiling) {
					t.Errorf("slot %d: smallest of %d delays = %v, want near 0 (full jitter)", slot, clients, lo[slot])
				}
			}
		})
	}
}

// TestNextManyAttempts runs far past the point where Base×Multiplier^n
// overflows int64 and float64: the delay stays within Cap.
func TestNextManyAttempts(t *testing.T) {
	t.Parallel()
	cfg := tetherbackoff.Config{Base: time.Second, Cap: math.MaxInt64, Multiplier: 1e6}
	b := mustNew(t, cfg, seeded(2, 0))
	for n := range 10_000 {
		if d := b.Next(); d < 0 {
			t.Fatalf("attempt %d: Next() = %v, want >= 0", n, d)
		}
	}
	if got := b.Attempts(); got != 10_000 {
		t.Fatalf("Attempts() = %d, want 10000", got)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := tetherbackoff.DefaultConfig()
	cfg.Cap = cfg.Base / 2
	b, err := backoff.New(cfg, nil)
	if err == nil || b != nil {
		t.Fatalf("New(%+v) = %v, %v; want nil and an error", cfg, b, err)
	}
	if want := cfg.Validate().Error(); err.Error() != want {
		t.Fatalf("New error = %q, want Validate's %q", err, want)
	}
}

// TestSameSeedSameDelays shows that an injected source makes a Backoff fully
// deterministic, which the other tests rely on.
func TestSameSeedSameDelays(t *testing.T) {
	t.Parallel()
	cfg := tetherbackoff.DefaultConfig()
	a, b := mustNew(t, cfg, seeded(3, 7)), mustNew(t, cfg, seeded(3, 7))
	for n := range 20 {
		if x, y := a.Next(), b.Next(); x != y {
			t.Fatalf("attempt %d: %v != %v with the same seed", n, x, y)
		}
	}
}

// TestDefaultSourceDiffers checks that Backoffs created with a nil source do
// not share a seed: clients that fail together must not retry in lockstep.
// Sixteen equal draws from independent crypto-seeded sources (each over a
// window of at least 1s in nanoseconds) would take about 2^-400 luck.
func TestDefaultSourceDiffers(t *testing.T) {
	t.Parallel()
	draw := func() []time.Duration {
		b := mustNew(t, tetherbackoff.DefaultConfig(), nil)
		ds := make([]time.Duration, 16)
		for i := range ds {
			ds[i] = b.Next()
		}
		return ds
	}
	if a, b := draw(), draw(); slices.Equal(a, b) {
		t.Fatalf("two default-seeded Backoffs drew the same delays: %v", a)
	}
}

func TestResetIfStable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		resetAfter time.Duration
		connected  time.Duration
		wantReset  bool
	}{
		{"shorter than ResetAfter", time.Minute, time.Minute - time.Nanosecond, false},
		{"exactly ResetAfter", time.Minute, time.Minute, true},
		{"longer than ResetAfter", time.Minute, time.Hour, true},
		{"never connected", time.Minute, 0, false},
		{"ResetAfter zero, brief session", 0, time.Nanosecond, true},
		{"ResetAfter zero, zero duration", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tetherbackoff.DefaultConfig()
			cfg.ResetAfter = tt.resetAfter
			b := mustNew(t, cfg, seeded(4, 0))
			for range 5 {
				b.Next()
			}
			if got := b.ResetIfStable(tt.connected); got != tt.wantReset {
				t.Fatalf("ResetIfStable(%v) with ResetAfter %v = %v, want %v", tt.connected, tt.resetAfter, got, tt.wantReset)
			}
			want := 5
			if tt.wantReset {
				want = 0
			}
			if got := b.Attempts(); got != want {
				t.Fatalf("Attempts() = %d, want %d", got, want)
			}
		})
	}
}

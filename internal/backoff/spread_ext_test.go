package backoff_test

import (
	"fmt"
	"testing"
	"time"

	tetherbackoff "github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/internal/backoff"
)

// The reconnect storm: a backend dies and all its clients fail at the same
// instant. Full jitter must spread their retries evenly over the window.
// The acceptance criterion is that, in 100ms buckets over the window, no
// bucket holds more than 3× the mean.
const (
	stormClients = 10_000
	bucketWidth  = 100 * time.Millisecond
	maxOverMean  = 3.0
)

// spread is the result of bucketing a storm's delays.
type spread struct {
	buckets  []int
	mean     float64 // clients per bucket
	max, min int
}

// bucket sorts delays into bucketWidth buckets over [0, window). The last
// bucket may be partial; the mean counts it as a whole bucket, which only
// makes the check stricter.
func bucket(delays []time.Duration, window time.Duration) (spread, error) {
	n := int((window + bucketWidth - 1) / bucketWidth)
	s := spread{buckets: make([]int, n), mean: float64(len(delays)) / float64(n)}
	for _, d := range delays {
		if d < 0 || d >= window {
			return s, fmt.Errorf("delay %v outside the window [0, %v)", d, window)
		}
		s.buckets[d/bucketWidth]++
	}
	s.max, s.min = s.buckets[0], s.buckets[0]
	for _, c := range s.buckets {
		s.max, s.min = max(s.max, c), min(s.min, c)
	}
	return s, nil
}

// check applies the acceptance criterion, and also requires every bucket to
// be used: a storm with holes in it is bunched somewhere else.
func (s spread) check() error {
	if float64(s.max) > maxOverMean*s.mean {
		return fmt.Errorf("busiest 100ms bucket holds %d clients, more than %.0f× the mean %.1f", s.max, maxOverMean, s.mean)
	}
	if s.min == 0 {
		return fmt.Errorf("a 100ms bucket is empty (mean %.1f): the retries bunch elsewhere", s.mean)
	}
	return nil
}

// storm simulates stormClients clients, each with its own deterministically
// seeded source, failing retries times in a row from the same instant. It
// returns delays[k][i], the k-th delay of client i.
func storm(t *testing.T, cfg tetherbackoff.Config, seed uint64, retries int) [][]time.Duration {
	t.Helper()
	delays := make([][]time.Duration, retries)
	for k := range delays {
		delays[k] = make([]time.Duration, stormClients)
	}
	for i := range stormClients {
		b, err := backoff.New(cfg, seeded(seed, i))
		if err != nil {
			t.Fatal(err)
		}
		for k := range retries {
			delays[k][i] = b.Next()
		}
	}
	return delays
}

// TestStormSpreads checks the acceptance criterion with the SDK default
// (Base 1s) for the first and second retries' delays, every later retry up
// to the Cap, and the instant at which the second retry goes out (the sum of
// the first two delays, which is what the next backend sees).
func TestStormSpreads(t *testing.T) {
	t.Parallel()
	cfg := tetherbackoff.DefaultConfig()
	const retries = 6 // windows 1s, 2s, 4s, 8s, 16s, 30s
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			delays := storm(t, cfg, seed, retries)
			window := cfg.Base
			for k := range retries {
				s, err := bucket(delays[k], window)
				if err == nil {
					err = s.check()
				}
				if err != nil {
					t.Errorf("retry %d (window %v): %v", k+1, window, err)
				} else {
					t.Logf("retry %d: %d buckets over %v, busiest %d, quietest %d, mean %.1f (max/mean %.2f)",
						k+1, len(s.buckets), window, s.max, s.min, s.mean, float64(s.max)/s.mean)
				}
				window = min(time.Duration(float64(window)*cfg.Multiplier), cfg.Cap)
			}

			arrivals := make([]time.Duration, stormClients)
			for i := range arrivals {
				arrivals[i] = delays[0][i] + delays[1][i]
			}
			window = cfg.Base + time.Duration(float64(cfg.Base)*cfg.Multiplier)
			s, err := bucket(arrivals, window)
			if err == nil {
				err = s.check()
			}
			if err != nil {
				t.Errorf("second retry's send time (window %v): %v", window, err)
			} else {
				t.Logf("second retry's send time: busiest %d, mean %.1f (max/mean %.2f)", s.max, s.mean, float64(s.max)/s.mean)
			}
		})
	}
}

// TestSpreadCheckCatchesStampede makes sure the check above is not vacuous:
// clients that retry after the same fixed delay, or with only ±10% jitter
// around Base/2, fail it.
func TestSpreadCheckCatchesStampede(t *testing.T) {
	t.Parallel()
	window := time.Second
	tests := []struct {
		name  string
		delay func(i int) time.Duration
	}{
		{"no jitter", func(int) time.Duration { return window / 2 }},
		{"10% jitter", func(i int) time.Duration {
			return window/2 + time.Duration(i%100-50)*window/1000 // 450ms to 549ms
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			delays := make([]time.Duration, stormClients)
			for i := range delays {
				delays[i] = tt.delay(i)
			}
			s, err := bucket(delays, window)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.check(); err == nil {
				t.Fatalf("check passed a stampede: buckets %v", s.buckets)
			}
		})
	}
}

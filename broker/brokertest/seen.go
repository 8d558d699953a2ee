package brokertest

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherhq/tether/broker"
)

var seenTests = []test{
	{"Window", testSeenWindow},
	{"Scopes", testSeenScopes},
	{"NoWindow", testSeenNoWindow},
	{"RecordingWindow", testSeenRecordingWindow},
	{"ManyKeys", testSeenManyKeys},
	{"Forget", testSeenForget},
	{"Recorded", testSeenRecorded},
}

// clocked runs f in a synctest bubble, or directly with RealTime. Either
// way, f reads and sleeps with package time, and scales its durations with
// s.scale.
func (s suite) clocked(t *testing.T, f func(t *testing.T)) {
	if s.realTime {
		f(t)
		return
	}
	synctest.Test(t, f)
}

// scale returns d for a base window of baseWindow: d itself in a bubble,
// d·unit/baseWindow with RealTime.
func (s suite) scale(d time.Duration) time.Duration {
	if !s.realTime {
		return d
	}
	return time.Duration(float64(d) / float64(baseWindow) * float64(s.unit))
}

// testSeenForget checks that a forgotten key is new again, that forgetting
// touches only its own scope, and that forgetting an unknown key is fine.
func testSeenForget(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		w := s.scale(time.Minute)
		seen(t, b, "s", "k", w, false)
		seen(t, b, "o", "k", w, false)
		if err := b.Forget(t.Context(), "s", "k"); err != nil {
			t.Fatal(err)
		}
		if err := b.Forget(t.Context(), "s", "never"); err != nil {
			t.Fatal(err)
		}
		seen(t, b, "s", "k", w, false)
		seen(t, b, "s", "k", w, true)
		seen(t, b, "o", "k", w, true)
		time.Sleep(2 * w) // the stale queue entry of the forgotten recording is swept cleanly
		seen(t, b, "s", "k", w, false)
	})
}

// seen calls Seen and fails t unless it reports want.
func seen(t *testing.T, b broker.Broker, scope, key string, window time.Duration, want bool) {
	t.Helper()
	got, err := b.Seen(t.Context(), scope, key, window)
	if err != nil {
		t.Fatalf("Seen(%q, %q, %v): %v", scope, key, window, err)
	}
	if got != want {
		t.Errorf("at %v, Seen(%q, %q, %v) = %v, want %v", time.Now().UTC().Format("15:04:05.000"), scope, key, window, got, want)
	}
}

// recorded fails t unless b.Recorded(scope, key) reports want.
func recorded(t *testing.T, b broker.Broker, scope, key string, want bool) {
	t.Helper()
	got, err := b.Recorded(t.Context(), scope, key)
	if err != nil {
		t.Fatalf("Recorded(%q, %q): %v", scope, key, err)
	}
	if got != want {
		t.Errorf("at %v, Recorded(%q, %q) = %v, want %v", time.Now().UTC().Format("15:04:05.000"), scope, key, got, want)
	}
}

// testSeenRecorded checks that Recorded reports what Seen recorded, in its
// scope, until its window ends or it is forgotten, and records nothing
// itself.
func testSeenRecorded(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		w := s.scale(time.Minute)
		recorded(t, b, "s", "k", false)
		seen(t, b, "s", "k", w, false) // Recorded did not record it
		recorded(t, b, "s", "k", true)
		recorded(t, b, "o", "k", false)
		time.Sleep(w / 2)
		recorded(t, b, "s", "k", true)
		time.Sleep(3 * w / 4)
		recorded(t, b, "s", "k", false)
		seen(t, b, "s", "f", w, false)
		if err := b.Forget(t.Context(), "s", "f"); err != nil {
			t.Fatal(err)
		}
		recorded(t, b, "s", "f", false)
	})
}

// testSeenWindow checks that a key is remembered for the window of the call
// that recorded it, that repeats do not extend it, and that it is recorded
// afresh once forgotten. Every check that a key is remembered comes at
// most half a window after it was recorded; every check that it is
// forgotten at least a quarter of a window after it expired (but before a
// wrongly extended window would end).
func testSeenWindow(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		w := s.scale(time.Minute)
		seen(t, b, "s", "k", w, false)
		seen(t, b, "s", "k", w, true)
		time.Sleep(w / 2)
		seen(t, b, "s", "k", w, true)
		time.Sleep(3 * w / 4) // 1.25w after recording; a repeat would have extended it to 1.5w
		seen(t, b, "s", "k", w, false)
		time.Sleep(w / 2)
		seen(t, b, "s", "k", w, true)
		time.Sleep(w)
		seen(t, b, "s", "k", w, false)
	})
}

func testSeenScopes(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		w := s.scale(time.Minute)
		seen(t, b, "a", "k", w, false)
		seen(t, b, "b", "k", w, false)
		seen(t, b, "a", "k2", w, false)
		seen(t, b, "", "ak", w, false)
		seen(t, b, "a", "k", w, true)
		seen(t, b, "b", "k", w, true)
		seen(t, b, "a", "k2", w, true)
		seen(t, b, "", "ak", w, true)
	})
}

func testSeenNoWindow(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		for _, w := range []time.Duration{0, -s.scale(time.Second)} {
			seen(t, b, "s", "k", w, false)
			seen(t, b, "s", "k", w, false)
		}
		seen(t, b, "s", "k", s.scale(time.Minute), false)
		seen(t, b, "s", "k", s.scale(time.Minute), true)
	})
}

// testSeenRecordingWindow checks that the window of the recording call
// applies, whatever the window of later calls. With RealTime, the short
// window is a sixtieth of the unit: the check after it only needs it to
// have passed, which waiting makes sure of.
func testSeenRecordingWindow(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		short, long := s.scale(time.Second), s.scale(time.Hour)
		seen(t, b, "s", "short", short, false)
		seen(t, b, "s", "long", long, false)
		time.Sleep(2 * short)
		seen(t, b, "s", "short", long, false)
		seen(t, b, "s", "long", short, true)
	})
}

// testSeenManyKeys records a key a step, each for ten steps, and checks
// that keys are remembered and forgotten on time while older ones expire:
// each key is checked again five steps after it was recorded (remembered)
// and eleven steps after (forgotten).
//
// In a bubble, a step is a second and 1000 keys go by. In real time, each
// step must leave room for the three calls made in it, and each check
// that a key is remembered has five steps to spare for the calls of the
// five steps before: a step of a tenth of the unit (200ms for a unit of 2s)
// does, where the scaled second (33ms) would not for a broker whose calls
// take 10ms. 30 keys (three windows: every key expires while later ones
// are recorded) keep the subtest to a few units.
func testSeenManyKeys(t *testing.T, s suite) {
	s.clocked(t, func(t *testing.T) {
		b, _ := s.start(t)
		step, keys := time.Second, 1000
		if s.realTime {
			step, keys = s.unit/10, 30
		}
		w := 10 * step
		key := func(i int) string { return fmt.Sprint("k", i) }
		for i := range keys {
			seen(t, b, "s", key(i), w, false)
			if i >= 5 {
				seen(t, b, "s", key(i-5), w, true)
			}
			if i >= 11 {
				seen(t, b, "s", key(i-11), w, false)
			}
			time.Sleep(step)
		}
	})
}

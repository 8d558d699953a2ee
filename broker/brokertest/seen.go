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
}

// testSeenForget checks that a forgotten key is new again, that forgetting
// touches only its own scope, and that forgetting an unknown key is fine.
func testSeenForget(t *testing.T, s suite) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := s.start(t)
		const w = time.Minute
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
		t.Errorf("at %v, Seen(%q, %q, %v) = %v, want %v", time.Now().UTC().Format(time.TimeOnly), scope, key, window, got, want)
	}
}

// testSeenWindow checks that a key is remembered for the window of the call
// that recorded it, that repeats do not extend it, and that it is recorded
// afresh once forgotten.
func testSeenWindow(t *testing.T, s suite) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := s.start(t)
		const w = time.Minute
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
	synctest.Test(t, func(t *testing.T) {
		b, _ := s.start(t)
		const w = time.Minute
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
	synctest.Test(t, func(t *testing.T) {
		b, _ := s.start(t)
		for _, w := range []time.Duration{0, -time.Second} {
			seen(t, b, "s", "k", w, false)
			seen(t, b, "s", "k", w, false)
		}
		seen(t, b, "s", "k", time.Minute, false)
		seen(t, b, "s", "k", time.Minute, true)
	})
}

// testSeenRecordingWindow checks that the window of the recording call
// applies, whatever the window of later calls.
func testSeenRecordingWindow(t *testing.T, s suite) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := s.start(t)
		seen(t, b, "s", "short", time.Second, false)
		seen(t, b, "s", "long", time.Hour, false)
		time.Sleep(2 * time.Second)
		seen(t, b, "s", "short", time.Hour, false)
		seen(t, b, "s", "long", time.Second, true)
	})
}

// testSeenManyKeys records a key a second, each for ten seconds, and checks
// that keys are remembered and forgotten on time while older ones expire.
func testSeenManyKeys(t *testing.T, s suite) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := s.start(t)
		const (
			w    = 10 * time.Second
			keys = 1000
		)
		key := func(i int) string { return fmt.Sprint("k", i) }
		for i := range keys {
			seen(t, b, "s", key(i), w, false)
			if i >= 5 {
				seen(t, b, "s", key(i-5), w, true)
			}
			if i >= 11 {
				seen(t, b, "s", key(i-11), w, false)
			}
			time.Sleep(time.Second)
		}
	})
}

//go:build unix

package auth_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/tetherhq/tether/auth"
)

// recordHandler is a slog.Handler that sends each record's message and
// attributes to a channel, so a test can wait for a log line.
type recordHandler struct{ ch chan<- slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r.Clone()
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestWatchSIGHUP sends SIGHUP to the test process and waits for the
// watcher to log each reload. The test keeps its own signal.Notify for
// SIGHUP for its whole duration, so that a signal the watcher has stopped
// listening for cannot end the process.
func TestWatchSIGHUP(t *testing.T) {
	guard := make(chan os.Signal, 8)
	signal.Notify(guard, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(guard) })

	s := mustLoad(t, testTokens())
	records := make(chan slog.Record, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := auth.WatchSIGHUP(ctx, s, slog.New(recordHandler{records}))

	hup := func() slog.Record {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-records:
			return r
		case <-time.After(defaultTestTimeout):
			t.Fatal("no reload logged after SIGHUP")
			return slog.Record{}
		}
	}

	// A good file is loaded.
	writeFile(t, s.Path(), `{"principals": [{"name": "later", "token_sha256": "`+auth.HashToken(tokenLater)+`"}]}`)
	if r := hup(); r.Level != slog.LevelInfo || attr(r, "principals") != "1" || attr(r, "path") != s.Path() {
		t.Errorf("good reload logged %v %q %v", r.Level, r.Message, attrs(r))
	}
	if p, ok := s.Lookup(tokenLater); !ok || p.Name != "later" {
		t.Errorf("after SIGHUP: Lookup(tokenLater) = %v, %v", p, ok)
	}

	// A bad file is reported and the principals stay.
	writeFile(t, s.Path(), `{"principals": [`)
	if r := hup(); r.Level != slog.LevelError || attr(r, "error") == "" {
		t.Errorf("bad reload logged %v %q %v", r.Level, r.Message, attrs(r))
	}
	if _, ok := s.Lookup(tokenLater); !ok {
		t.Error("a failed reload on SIGHUP dropped the principals")
	}

	cancel()
	select {
	case <-done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the watcher did not stop after its context ended")
	}
	// Stopped: a SIGHUP now reaches only the guard and reloads nothing.
	writeFile(t, s.Path(), testTokens())
	drain(guard)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-guard:
	case <-time.After(defaultTestTimeout):
		t.Fatal("SIGHUP not delivered to the guard")
	}
	select {
	case r := <-records:
		t.Errorf("a stopped watcher logged %q", r.Message)
	default:
	}
	if _, ok := s.Lookup(tokenA); ok {
		t.Error("a stopped watcher reloaded the file")
	}
}

// drain empties ch.
func drain(ch <-chan os.Signal) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// attr returns the value of the attribute key of r, or "".
func attr(r slog.Record, key string) string {
	return attrs(r)[key]
}

// attrs returns the attributes of r as strings.
func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

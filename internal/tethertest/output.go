package tethertest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output collects what a command (run in-process or as a child process)
// writes, so a test can wait for it. It is safe for concurrent use, with
// one waiter at a time.
type Output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

// NewOutput returns an empty Output.
func NewOutput() *Output { return &Output{changed: make(chan struct{}, 1)} }

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Await waits until cond holds for the output so far and returns that
// output. It fails the test when ended is closed first (the writer is
// done) or after within.
func (o *Output) Await(t testing.TB, what string, within time.Duration, ended <-chan struct{}, cond func(string) bool) string {
	t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		s := o.String()
		if cond(s) {
			return s
		}
		select {
		case <-o.changed:
		case <-ended:
			if s := o.String(); cond(s) {
				return s
			}
			t.Fatalf("ended before %s; output:\n%s", what, o.String())
		case <-timeout.C:
			t.Fatalf("no %s within %v; output:\n%s", what, within, o.String())
		}
	}
}

// JSONLines parses the output so far as one JSON object per line (a
// slog.JSONHandler's records, say) and fails the test on a line that is
// not one.
func (o *Output) JSONLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(o.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// waitLong bounds every wait for something that must happen, generously:
// the machine may be busy and the tests run with -race.
const waitLong = 20 * time.Second

func TestMain(m *testing.M) {
	// In-process runs read these; the tests set them when they want them.
	_ = os.Unsetenv(envAddr)
	_ = os.Unsetenv(envToken)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if built.dir != "" {
			_ = os.RemoveAll(built.dir)
		}
		os.Exit(code)
	}))
}

// output is the project's test output collector.
type output = tethertest.Output

func newOutput() *output { return tethertest.NewOutput() }

// event is one JSON line of connect.
type event map[string]any

// str returns a field as a string ("" when missing).
func (e event) str(k string) string {
	if v, ok := e[k]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

// matches reports whether e has every key=value of want; a value "*" only
// asks for the key to be there.
func (e event) matches(want map[string]string) bool {
	for k, v := range want {
		got, ok := e[k]
		if !ok || (v != "*" && fmt.Sprint(got) != v) {
			return false
		}
	}
	return true
}

// events parses every complete line of s; each must be one JSON object.
func events(t *testing.T, s string) []event {
	t.Helper()
	var evs []event
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v\n%s", sc.Text(), err, s)
		}
		evs = append(evs, e)
	}
	return evs
}

// await waits until some event has every key=value of want, and returns
// the first such event. It fails the test when ended is closed first or
// after waitLong.
func await(t *testing.T, o *output, ended <-chan struct{}, want map[string]string) event {
	t.Helper()
	var found event
	o.Await(t, fmt.Sprintf("a line with %v", want), waitLong, ended, func(s string) bool {
		for _, e := range events(t, completeLines(s)) {
			if e.matches(want) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// completeLines drops a partly written last line.
func completeLines(s string) string {
	return s[:strings.LastIndexByte(s, '\n')+1]
}

// running is an in-process run of tether (connect) in the background.
type running struct {
	t              *testing.T
	stdout, stderr *output
	cancel         context.CancelFunc // Ctrl-C
	done           chan struct{}      // closed when run has returned
	code           int                // run's result, set before done closes
}

// start runs tether with args in the background; cleanup cancels it and
// waits for it.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, stdout: newOutput(), stderr: newOutput(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.code = run(ctx, args, strings.NewReader(""), r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// await waits for a line with every key=value of want.
func (r *running) await(want map[string]string) event {
	r.t.Helper()
	return await(r.t, r.stdout, r.done, want)
}

// wait waits for run to return by itself and returns its exit status.
func (r *running) wait() int {
	r.t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(waitLong):
		r.t.Fatalf("tether did not return within %v; stdout:\n%s\nstderr:\n%s", waitLong, r.stdout, r.stderr)
		return -1
	}
}

// interrupt simulates Ctrl-C and returns the exit status.
func (r *running) interrupt() int {
	r.t.Helper()
	r.cancel()
	return r.wait()
}

// lines returns the output's events so far.
func (r *running) lines() []event {
	r.t.Helper()
	return events(r.t, completeLines(r.stdout.String()))
}

// tether runs tether with args and stdin to completion, bounded by
// waitLong, and returns its exit status, stdout and stderr.
func tether(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("tether %v did not finish within %v", args, waitLong)
	}
	return code, stdout.String(), stderr.String()
}

// mustTether runs tether and fails the test unless it exits 0.
func mustTether(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, stdout, stderr := tether(t, stdin, args...)
	if code != 0 {
		t.Fatalf("tether %v exited %d; stderr:\n%s", args, code, stderr)
	}
	return stdout
}

// startServer starts a tether server, like tethertest.Serve, with extra
// gRPC server options; it is stopped at cleanup if not before.
func startServer(t *testing.T, gsOpts []grpc.ServerOption, opts ...server.Option) *tethertest.Node {
	t.Helper()
	ts := tethertest.StartNode(t, gsOpts, opts...)
	t.Cleanup(ts.Stop) // runs before StartNode's Kill, which is then a no-op
	return ts
}

// ctxT is a context bounded by waitLong, cancelled at cleanup.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// Package nodeclient_test proves the tether protocol works for a client
// built from the .proto files alone: a Node.js client (testdata/client.mjs,
// @grpc/grpc-js + @grpc/proto-loader, no generated code) runs a full session
// against a real server, through a fault proxy that breaks the stream, and
// must resume without loss or duplicates.
package nodeclient_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/faultproxy"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

const (
	// waitLong bounds what must happen (grpc-go test convention).
	waitLong = 10 * time.Second
	// npmTimeout bounds `npm ci` when node_modules is missing.
	npmTimeout = 3 * time.Minute
	// clientTimeout is the node client's own overall deadline; the test's
	// context kills it a little later if it ignores it.
	clientTimeout = 20 * time.Second
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// event is one JSON line from client.mjs.
type event struct {
	Event        string `json:"event"`
	Stream       int    `json:"stream"`
	Seq          string `json:"seq"`
	Payload      string `json:"payload"`
	ID           string `json:"id"`
	SessionID    string `json:"sessionId"`
	Resumed      bool   `json:"resumed"`
	ResumeStatus string `json:"resumeStatus"`
	HeartbeatMs  int    `json:"heartbeatIntervalMs"`
	LastSentSeq  string `json:"lastSentSeq"`
	Code         int    `json:"code"`
	Details      string `json:"details"`
	Error        string `json:"error"`

	raw string
}

// nodeClient is a running client.mjs.
type nodeClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan event
	stderr *tethertest.Output
	seen   []event // every event consumed so far, in order
}

// ensureNodeModules runs `npm ci` in dir when dir/node_modules is missing.
func ensureNodeModules(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "proto-loader")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("testdata/node_modules is missing and npm is not on PATH: run `npm ci` in %s", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s failed after %v: %v\n%s", dir, time.Since(start).Round(time.Millisecond), err, out)
	}
	t.Logf("npm ci: %v", time.Since(start).Round(time.Millisecond))
}

// startTether runs a tether server on a loopback port with the datacenter
// profile, whose 1s minimum heartbeat keeps the ping/pong part fast.
func startTether(t *testing.T) (*server.Server, string) {
	t.Helper()
	return tethertest.Serve(t, server.WithServerID("nodeclient-test"), server.WithProfile(profile.Datacenter()))
}

// startNode starts client.mjs against addr, to receive want messages.
func startNode(t *testing.T, ctx context.Context, dir, addr string, want int, env ...string) *nodeClient {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", "client.mjs", addr, strconv.Itoa(want))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	nc := &nodeClient{t: t, cmd: cmd, events: make(chan event, 256), stderr: tethertest.NewOutput()}
	cmd.Stderr = nc.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	go func() {
		defer close(nc.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var e event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				e = event{Event: "unparsable", Error: err.Error()}
			}
			e.raw = line
			nc.events <- e
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // the test failed before wait
			_ = cmd.Process.Kill()
			for range nc.events {
			}
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("node stderr:\n%s", nc.stderr.String())
		}
	})
	return nc
}

// next returns the next event matching match, failing on a fatal event, an
// unparsable line, the client exiting, or waitLong passing. Every event is
// logged and kept in nc.seen.
func (nc *nodeClient) next(what string, match func(event) bool) event {
	nc.t.Helper()
	timer := time.NewTimer(waitLong)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-nc.events:
			if !ok {
				nc.t.Fatalf("node exited while waiting for %s (stderr: %s)", what, nc.stderr.String())
			}
			nc.t.Logf("node: %s", e.raw)
			nc.seen = append(nc.seen, e)
			if e.Event == "fatal" || e.Event == "unparsable" {
				nc.t.Fatalf("node reported %s: %s (waiting for %s)", e.Event, e.Error, what)
			}
			if match(e) {
				return e
			}
		case <-timer.C:
			nc.t.Fatalf("no %s from node within %v", what, waitLong)
		}
	}
}

func is(kind string) func(event) bool { return func(e event) bool { return e.Event == kind } }

// wait drains the remaining events and waits for the client to exit.
func (nc *nodeClient) wait() error {
	nc.t.Helper()
	for e := range nc.events {
		nc.t.Logf("node: %s", e.raw)
		nc.seen = append(nc.seen, e)
	}
	return nc.cmd.Wait()
}

// poll calls f until it returns nil or waitLong passes.
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %v", what, waitLong, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rig is a tether server behind a fault proxy, and the test's own admin
// client that bypasses the proxy.
type rig struct {
	dir   string // testdata, with node_modules
	srv   *server.Server
	proxy *faultproxy.Proxy
	admin tetherv1.AdminServiceClient
}

func newRig(t *testing.T) *rig {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH: this test runs a Node.js client (testdata/client.mjs); install Node.js 20+ to run it")
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ensureNodeModules(t, dir)
	srv, serverAddr := startTether(t)
	proxy, err := faultproxy.Start(serverAddr)
	if err != nil {
		t.Fatalf("faultproxy.Start: %v", err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	cc, err := grpc.NewClient(serverAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &rig{dir: dir, srv: srv, proxy: proxy, admin: tetherv1.NewAdminServiceClient(cc)}
}

// clientEnv is the node client's environment for client id id.
func clientEnv(id string) []string {
	return []string{
		"TETHER_CLIENT_ID=" + id,
		"TETHER_HEARTBEAT_MS=1000", // the datacenter profile's minimum
		"TETHER_TIMEOUT_MS=" + strconv.Itoa(int(clientTimeout/time.Millisecond)),
		"TETHER_RECONNECT_DELAY_MS=100",
	}
}

func TestNodeClientSessionSurvivesReset(t *testing.T) {
	start := time.Now()
	rg := newRig(t)
	srv, proxy, admin := rg.srv, rg.proxy, rg.admin

	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout+5*time.Second)
	defer cancel()
	const clientID = "node-1"
	const total = 6
	nc := startNode(t, ctx, rg.dir, proxy.Addr(), total, clientEnv(clientID)...)

	getSession := func(id string) (*tetherv1.GetSessionResponse, error) {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		return admin.GetSession(rctx, &tetherv1.GetSessionRequest{SessionId: id})
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			n, err := srv.Publish(ctx, broker.Client(clientID), []byte(fmt.Sprintf("m%d", i)), "")
			if err != nil || n != 1 {
				t.Fatalf("Publish m%d = %d, %v; want 1 session reached", i, n, err)
			}
		}
	}
	expectMessages := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			e := nc.next(fmt.Sprintf("message %d", i), is("message"))
			if e.Seq != strconv.Itoa(i) || e.Payload != fmt.Sprintf("m%d", i) {
				t.Fatalf("message seq %s payload %q; want seq %d payload m%d", e.Seq, e.Payload, i, i)
			}
		}
	}

	// 1. A fresh session.
	w := nc.next("the first welcome", is("welcome"))
	if w.Resumed || w.ResumeStatus != "RESUME_STATUS_NOT_REQUESTED" || w.SessionID == "" {
		t.Fatalf("first welcome: resumed=%v status=%s session=%q; want a fresh session", w.Resumed, w.ResumeStatus, w.SessionID)
	}
	if w.HeartbeatMs != 1000 {
		t.Errorf("granted heartbeat %dms; want the 1000ms asked for", w.HeartbeatMs)
	}
	sessionID := w.SessionID
	tWelcome := time.Now()

	// 2. Messages 1..3 arrive, in order, and are acked; the server sees the ack.
	publish(1, 3)
	expectMessages(1, 3)
	nc.next("ack 3", func(e event) bool { return e.Event == "ack" && e.Seq == "3" })
	poll(t, "server sees ack 3", func() error {
		r, err := getSession(sessionID)
		if err != nil {
			return err
		}
		if got := r.GetSession().GetLastAckedSeq(); got != 3 {
			return fmt.Errorf("last_acked_seq %d", got)
		}
		return nil
	})

	// 3. The server pings the write-idle client (1s), the client answers with
	// Pong echoing id and sent_at, and the server measures an RTT from it.
	nc.next("a pong to a server ping", is("pong"))
	tPong := time.Since(tWelcome)
	poll(t, "server records an RTT from the pong", func() error {
		r, err := getSession(sessionID)
		if err != nil {
			return err
		}
		if r.GetSession().GetLastRtt() == nil {
			return errors.New("no last_rtt yet")
		}
		return nil
	})

	// 4. Break the stream: refuse new connections while we publish 4..6, so
	// they are certainly queued to a detached session, and until one
	// reconnect attempt has failed; then let the client in.
	proxy.Refuse(true)
	proxy.Reset()
	tReset := time.Now()
	poll(t, "server detaches the session", func() error {
		r, err := getSession(sessionID)
		if err != nil {
			return err
		}
		if st := r.GetSession().GetState(); st != tetherv1.SessionState_SESSION_STATE_DETACHED {
			return fmt.Errorf("state %v", st)
		}
		return nil
	})
	publish(4, 6)
	r, err := getSession(sessionID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if s := r.GetSession(); s.GetState() != tetherv1.SessionState_SESSION_STATE_DETACHED || s.GetUnacked() != 3 || s.GetLastSentSeq() != 3 {
		t.Fatalf("after publishing 4..6 while detached: state %v, unacked %d, last_sent_seq %d; want DETACHED, 3, 3",
			s.GetState(), s.GetUnacked(), s.GetLastSentSeq())
	}
	d := nc.next("disconnected", is("disconnected"))
	if d.Stream != 1 {
		t.Fatalf("disconnected event for stream %d; want stream 1", d.Stream)
	}
	// The first reconnect attempt is refused (the backend is "down"); the
	// client backs off and tries again with the same resume state.
	d = nc.next("a refused reconnect", is("disconnected"))
	if d.Stream != 2 || d.Code != 14 {
		t.Fatalf("disconnected event for stream %d with code %d; want stream 2 UNAVAILABLE (14)", d.Stream, d.Code)
	}
	proxy.Refuse(false)

	// 5. The client resumes and receives 4..6 exactly once, in order.
	w = nc.next("the resumed welcome", is("welcome"))
	tResumed := time.Since(tReset)
	if !w.Resumed || w.ResumeStatus != "RESUME_STATUS_RESUMED" || w.SessionID != sessionID {
		t.Fatalf("welcome after reset: resumed=%v status=%s session=%q; want resumed %q with RESUME_STATUS_RESUMED",
			w.Resumed, w.ResumeStatus, w.SessionID, sessionID)
	}
	expectMessages(4, 6)

	// 6. The client closes the session and exits 0.
	nc.next("closed", is("closed"))
	if err := nc.wait(); err != nil {
		t.Fatalf("node exited with %v; want 0 (stderr: %s)", err, nc.stderr.String())
	}

	// The whole transcript: every seq once, in order; no duplicates; two
	// welcomes; at least one pong.
	var seqs []string
	counts := map[string]int{}
	for _, e := range nc.seen {
		counts[e.Event]++
		if e.Event == "message" {
			seqs = append(seqs, e.Seq)
		}
	}
	if want := []string{"1", "2", "3", "4", "5", "6"}; !slices.Equal(seqs, want) {
		t.Errorf("delivered seqs %v; want %v", seqs, want)
	}
	if counts["duplicate"] != 0 {
		t.Errorf("the server re-sent %d messages the client had already received and acked", counts["duplicate"])
	}
	if counts["welcome"] != 2 {
		t.Errorf("%d welcomes; want 2 (fresh, resumed)", counts["welcome"])
	}
	if counts["pong"] == 0 {
		t.Errorf("the client answered no server ping")
	}
	// The session ended for good: Close means no resume (Admin shows it
	// CLOSED for the resume window).
	if r, err := getSession(sessionID); err == nil && r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_CLOSED {
		t.Errorf("GetSession after the client's Close: %v; want CLOSED or NOT_FOUND", r.GetSession().GetState())
	}
	t.Logf("timings: first pong %v after welcome; resumed %v after reset; total %v (events: %s)",
		tPong.Round(time.Millisecond), tResumed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), summarize(counts))
}

// TestNodeClientStopsOnAdminClose checks the client's other side: a GoAway
// that says "do not reconnect" (an operator closed the session) makes it
// exit non-zero with a clear message instead of reconnecting.
func TestNodeClientStopsOnAdminClose(t *testing.T) {
	rg := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout+5*time.Second)
	defer cancel()
	nc := startNode(t, ctx, rg.dir, rg.proxy.Addr(), 1, clientEnv("node-2")...)
	w := nc.next("welcome", is("welcome"))
	if _, err := rg.admin.CloseSession(ctx, &tetherv1.CloseSessionRequest{SessionId: w.SessionID, Reason: "test"}); err != nil {
		t.Fatalf("CloseSession: %v", err)
	}
	g := nc.next("goaway", is("goaway"))
	if !strings.Contains(g.raw, "GO_AWAY_REASON_CLOSED_BY_ADMIN") {
		t.Fatalf("goaway %s; want GO_AWAY_REASON_CLOSED_BY_ADMIN", g.raw)
	}
	var fatal event
	for e := range nc.events {
		t.Logf("node: %s", e.raw)
		if e.Event == "fatal" {
			fatal = e
		}
		if e.Event == "reconnecting" || e.Event == "hello" {
			t.Errorf("the client reconnects after CLOSED_BY_ADMIN: %s", e.raw)
		}
	}
	err := nc.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("node exited with %v; want exit status 1", err)
	}
	if !strings.Contains(fatal.Error, "CLOSED_BY_ADMIN") || !strings.Contains(nc.stderr.String(), "do not reconnect") {
		t.Fatalf("fatal %q, stderr %q; want a clear CLOSED_BY_ADMIN / do not reconnect message", fatal.Error, nc.stderr.String())
	}
}

func summarize(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, counts[k])
	}
	return strings.Join(parts, " ")
}

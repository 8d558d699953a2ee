package nodeclient_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// errorsDir is testdata with node_modules, or a skip without node.
func errorsDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH: this test runs a Node.js client (testdata/errors.mjs); install Node.js 20+ to run it")
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ensureNodeModules(t, dir)
	return dir
}

// runErrors runs errors.mjs against addr in mode and returns its events,
// each a decoded JSON object, and fails on a fatal event or a non-zero exit.
func runErrors(t *testing.T, dir, addr, mode string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "errors.mjs", addr, mode)
	cmd.Dir = dir
	stderr := tethertest.NewOutput()
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	var events []map[string]any
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		t.Logf("node: %s", sc.Text())
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("unparsable line %q: %v", sc.Text(), err)
		}
		if e["event"] == "fatal" {
			t.Errorf("node reported: %v", e["error"])
		}
		events = append(events, e)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v (stderr: %s)", err, stderr.String())
	}
	return events
}

// only returns the events of kind.
func only(events []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, e := range events {
		if e["event"] == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestNodeClientFollowsTheErrorModel(t *testing.T) {
	dir := errorsDir(t)
	const maxMessage = 4096
	_, addr := tethertest.Serve(t, server.WithServerID("nodeclient-errors"), server.WithProfile(profile.Datacenter()),
		server.WithMaxMessageBytes(maxMessage))
	events := runErrors(t, dir, addr, "limits")

	w := only(events, "welcome")
	if len(w) != 1 {
		t.Fatalf("%d welcomes; want 1", len(w))
	}
	limits, _ := w[0]["limits"].(map[string]any)
	if limits["maxMessageBytes"] != float64(maxMessage) || limits["maxFrameBytes"].(float64) <= maxMessage ||
		limits["maxFramesPerSecond"].(float64) <= 0 || limits["maxFrameBurst"].(float64) <= 0 || limits["minHeartbeatInterval"] == nil {
		t.Fatalf("welcome limits %v; want every limit announced", limits)
	}
	// Obeyed: a payload of exactly max_message_bytes, in a frame within
	// max_frame_bytes, was handled (no Error for it).
	if o := only(events, "obeyed"); len(o) != 1 || o[0]["payload"] != float64(maxMessage) {
		t.Fatalf("obeyed %v", o)
	}
	// One byte more: failed, named, then acked.
	f := only(events, "failed")
	if len(f) != 1 || f[0]["seq"] != "2" || f[0]["code"] != float64(codes.InvalidArgument) ||
		!contains(f[0]["message"], "(Welcome.limits.max_message_bytes)") {
		t.Fatalf("failed %v; want message 2 failed with INVALID_ARGUMENT naming Welcome.limits.max_message_bytes", f)
	}
	// A Subscribe with one bad topic: an Error naming it and the request.
	s := only(events, "subscribe-error")
	if len(s) != 1 || s[0]["requestId"] != "42" || s[0]["topic"] != "has space" || s[0]["code"] != float64(codes.InvalidArgument) {
		t.Fatalf("subscribe-error %v; want request 42, topic %q, INVALID_ARGUMENT", s, "has space")
	}
	// The violation ends the stream with INVALID_ARGUMENT: terminal, no
	// reconnect.
	end := only(events, "ended")
	if len(end) != 1 || end[0]["code"] != float64(codes.InvalidArgument) || end[0]["class"] != "terminal" || end[0]["step"] != "violation" {
		t.Fatalf("ended %v; want one terminal INVALID_ARGUMENT after the violation", end)
	}
	if r := only(events, "reconnecting"); len(r) != 0 {
		t.Fatalf("the client reconnected after a terminal code: %v", r)
	}
}

// denyConnect refuses every stream, and counts them.
type denyConnect struct {
	server.AllowAll
	calls *atomic.Int32
}

func (d denyConnect) Connect(context.Context) error {
	d.calls.Add(1)
	return status.Error(codes.PermissionDenied, "this principal may not connect")
}

func TestNodeClientStopsOnPermissionDenied(t *testing.T) {
	dir := errorsDir(t)
	var calls atomic.Int32
	_, addr := tethertest.Serve(t, server.WithServerID("nodeclient-denied"), server.WithAuthorizer(denyConnect{calls: &calls}))
	events := runErrors(t, dir, addr, "connect")
	end := only(events, "ended")
	if len(end) != 1 || end[0]["code"] != float64(codes.PermissionDenied) || end[0]["class"] != "terminal" {
		t.Fatalf("ended %v; want one terminal PERMISSION_DENIED", end)
	}
	if n := calls.Load(); n != 1 || len(only(events, "reconnecting")) != 0 {
		t.Fatalf("%d streams opened; want 1: PERMISSION_DENIED is terminal", n)
	}
}

func TestNodeClientRetriesWhenTheServerIsFull(t *testing.T) {
	dir := errorsDir(t)
	_, addr := tethertest.Serve(t, server.WithServerID("nodeclient-full"), server.WithMaxSessions(1))
	// Take the only session.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{}}}); err != nil {
		t.Fatal(err)
	}
	if f, err := s.Recv(); err != nil || f.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", f, err)
	}
	events := runErrors(t, dir, addr, "connect")
	end := only(events, "ended")
	if len(end) != 2 || end[0]["code"] != float64(codes.Unavailable) || end[0]["class"] != "retryable" || len(only(events, "reconnecting")) != 1 {
		t.Fatalf("ended %v; want UNAVAILABLE, retryable: one reconnect (the script's cap), then the same", end)
	}
}

func contains(v any, sub string) bool {
	s, _ := v.(string)
	return strings.Contains(s, sub)
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetherhq/tether/internal/agenttest"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// agentCall calls path on the agent at sock over a new connection.
func agentCall(ctx context.Context, sock, method, path, body string) (int, map[string]any, error) {
	hc := agenttest.UnixClient(sock)
	defer hc.CloseIdleConnections()
	return agenttest.Call(ctx, hc, method, path, body)
}

// outcome is what one short-lived caller saw.
type outcome struct {
	answer    string // the payload of its 200
	retryable []string
	err       error // a non-retryable failure
}

// callUntilAnswered calls svc.echo with payload, retrying (each time a new
// connection) after retryable errors only.
func callUntilAnswered(ctx context.Context, sock, payload string) outcome {
	var o outcome
	for range 10 {
		code, out, err := agentCall(ctx, sock, http.MethodPost, "/v1/request", fmt.Sprintf(`{"topic":"svc.echo","payload":%q,"timeout":"10s"}`, payload))
		switch {
		case err != nil:
			o.err = err
			return o
		case code == http.StatusOK:
			o.answer, _ = out["payload"].(string)
			return o
		case out["retryable"] == true && out["error"] != "":
			o.retryable = append(o.retryable, fmt.Sprintf("%d %v", code, out["error"]))
		default:
			o.err = fmt.Errorf("%d %v", code, out)
			return o
		}
	}
	o.err = fmt.Errorf("still retryable after 10 tries: %v", o.retryable)
	return o
}

// TestAgentRequestsThroughAFailover: 200 short-lived callers, each on new
// connections to the agent's Unix socket, call a tether reply responder
// while the node the agent uses is killed and the other takes over. Every
// caller gets its own answer (after retrying clear retryable errors), and
// the agent hands out exactly one reply per answered call.
func TestAgentRequestsThroughAFailover(t *testing.T) {
	nodes := map[string]*tethertest.Node{}
	var addrs []string
	for _, id := range []string{"A", "B"} {
		ts := startServer(t, nil, server.WithServerID(id))
		nodes[ts.Addr] = ts
		addrs = append(addrs, ts.Addr)
		// With in-memory brokers a responder serves its own node: one per node.
		r := start(t, "reply", "svc.echo", "--addr", ts.Addr, "--client-id", "echo-"+id, "--command", "tr a-z A-Z", "--concurrency", "8", "--timeout", "2s")
		r.await(map[string]string{"state": "connected"})
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := start(t, "agent", "--addr", strings.Join(addrs, ","), "--socket", sock, "--client-id", "agent-1")
	ag.await(map[string]string{"event": "listening", "socket": sock})
	x := ag.await(map[string]string{"state": "connected"}).str("backend")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v; want mode 0600", fi, err)
	}
	ctx := ctxT(t)

	const callers = 200
	outcomes := make([]outcome, callers)
	var wg sync.WaitGroup
	wave := func(from, to int) {
		for i := from; i < to; i++ {
			wg.Go(func() { outcomes[i] = callUntilAnswered(ctx, sock, fmt.Sprintf("caller-%d", i)) })
		}
	}
	wave(0, callers/2)
	// Kill the agent's node while calls are in flight.
	var inFlight float64
	for inFlight < 5 {
		code, st, err := agentCall(ctx, sock, http.MethodGet, "/v1/status", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("status: %d %v %v", code, st, err)
		}
		inFlight, _ = st["in_flight"].(float64)
		if st["replied"].(float64) >= callers/2 {
			t.Fatalf("every call of the first wave ended before the kill: %v", st)
		}
	}
	nodes[x].Kill()
	wave(callers/2, callers)
	wg.Wait()

	retried := 0
	for i, o := range outcomes {
		if want := strings.ToUpper(fmt.Sprintf("caller-%d", i)); o.err != nil || o.answer != want {
			t.Errorf("caller %d: answer %q, error %v, retryable errors %v; want %q", i, o.answer, o.err, o.retryable, want)
		}
		if len(o.retryable) > 0 {
			retried++
			if retried == 1 {
				t.Logf("caller %d retried after: %v", i, o.retryable)
			}
		}
	}
	_, st, err := agentCall(ctx, sock, http.MethodGet, "/v1/status", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d in flight at the kill; %d callers retried; agent status %v", int(inFlight), retried, st)
	if st["replied"] != float64(callers) {
		t.Errorf("the agent handed out %v replies for %d answered calls: some call was answered twice", st["replied"], callers)
	}
	if st["backend"] == x || st["fresh_sessions"] != 2.0 {
		t.Errorf("status %v: want a fresh session on the other node", st)
	}
	if code := ag.interrupt(); code != 0 {
		t.Errorf("agent exited %d; stderr:\n%s", code, ag.stderr)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("after the agent exited, the socket: %v; want it removed", err)
	}
}

func TestAgentEventsAndPublish(t *testing.T) {
	ts := startServer(t, nil)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := start(t, "agent", "--addr", ts.Addr, "--socket", sock, "--client-id", "agent-1", "--topic", "news")
	ag.await(map[string]string{"state": "connected"})
	ctx := ctxT(t)
	mustTether(t, "", "publish", "--addr", ts.Addr, "--client-id", "agent-1", "--data", "direct")
	code, out, err := agentCall(ctx, sock, http.MethodPost, "/v1/publish", `{"topic":"news","payload":"headline","wait":true}`)
	if err != nil || code != http.StatusOK || out["acked"] != true {
		t.Fatalf("publish with wait: %d %v %v", code, out, err)
	}
	got := sseMessages(t, ctx, sock, "", 2)
	if !strings.HasSuffix(got[0], ":direct") || !strings.HasSuffix(got[1], ":headline") {
		t.Fatalf("events %v; want direct, then headline", got)
	}
	// A reader that reconnects with the first one's id gets the second.
	first, _, _ := strings.Cut(got[0], ":")
	if again := sseMessages(t, ctx, sock, first, 1); again[0] != got[1] {
		t.Errorf("after Last-Event-ID %s: %v; want %v", first, again, got[1])
	}
	code, st, err := agentCall(ctx, sock, http.MethodGet, "/v1/status", "")
	if err != nil || code != http.StatusOK || st["state"] != "connected" || st["backend"] != ts.Addr || st["fresh_sessions"] != 1.0 {
		t.Errorf("status: %d %v %v", code, st, err)
	}
}

func TestReplyCommandFailures(t *testing.T) {
	ts := startServer(t, nil)
	start(t, "reply", "svc.fail", "--addr", ts.Addr, "--command", "echo out; echo oops >&2; exit 3").await(map[string]string{"state": "connected"})
	start(t, "reply", "svc.slow", "--addr", ts.Addr, "--command", "exec sleep 60", "--command-timeout", "100ms").await(map[string]string{"state": "connected"})
	start(t, "reply", "svc.echo", "--addr", ts.Addr).await(map[string]string{"state": "connected"})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := start(t, "agent", "--addr", ts.Addr, "--socket", sock, "--client-id", "agent-1")
	ag.await(map[string]string{"state": "connected"})
	ctx := ctxT(t)

	code, out, err := agentCall(ctx, sock, http.MethodPost, "/v1/request", `{"topic":"svc.fail","payload":"x"}`)
	reply, _ := out["reply"].(map[string]any)
	headers, _ := reply["headers"].(map[string]any)
	if err != nil || code != http.StatusBadGateway || out["error"] != "the responder failed: exit status 3: oops" || reply["payload"] != "out\n" || headers["tether-exit-status"] != "3" {
		t.Errorf("a failing command: %d %v %v; want 502 with the exit status, stderr and stdout", code, out, err)
	}
	code, out, err = agentCall(ctx, sock, http.MethodPost, "/v1/request", `{"topic":"svc.slow","payload":"x"}`)
	if msg, _ := out["error"].(string); err != nil || code != http.StatusBadGateway || !strings.Contains(msg, "ran longer than 100ms and was killed") {
		t.Errorf("a command past its timeout: %d %v %v; want 502, killed", code, out, err)
	}
	code, out, err = agentCall(ctx, sock, http.MethodPost, "/v1/request", `{"topic":"svc.echo","payload_b64":"AP8=","content_type":"application/octet-stream"}`)
	if err != nil || code != http.StatusOK || out["payload_b64"] != "AP8=" || out["content_type"] != "application/octet-stream" {
		t.Errorf("echo: %d %v %v; want the payload back", code, out, err)
	}
}

// sseLines reads the event stream's lines until it has n "data:" lines of
// kind "message".
func sseMessages(t *testing.T, ctx context.Context, sock, lastID string, n int) []string {
	t.Helper()
	hc := agenttest.UnixClient(sock)
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	var id, kind string
	sc := bufio.NewScanner(resp.Body)
	for len(got) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			kind = line[7:]
		case strings.HasPrefix(line, "data: ") && kind == "message":
			var m map[string]any
			if err := json.Unmarshal([]byte(line[6:]), &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s:%v", id, m["payload"]))
		}
	}
	if len(got) < n {
		t.Fatalf("the event stream ended after %v: %v", got, sc.Err())
	}
	return got
}

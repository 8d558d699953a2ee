package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/agenttest"
)

func TestSocketPermissions(t *testing.T) {
	old := syscall.Umask(0) // the most permissive umask: the mode must not depend on it
	defer syscall.Umask(old)
	dir := t.TempDir()
	sock := filepath.Join(dir, "a.sock")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v; want a socket with 0600", fi.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %v; want only the socket (the temporary directory removed)", entries)
	}
	if _, err := ListenUnix(sock); err == nil || !strings.Contains(err.Error(), "another process listens") {
		t.Errorf("a second listener on a live socket: %v; want refused", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("after Close: %v; want the socket removed", err)
	}

	// A stale socket (its process died) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err = ListenUnix(sock)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	l.Close()

	// A file that is not a socket is left alone.
	if err := os.WriteFile(sock, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v; want refused", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "keep me" {
		t.Errorf("the file was changed: %q", b)
	}
	long := filepath.Join(dir, strings.Repeat("x", 100)+".sock")
	if _, err := ListenUnix(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("a path of %d bytes: %v; want too long", len(long), err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:80", "nonsense"} {
		if l, err := ListenLoopback(addr); err == nil {
			l.Close()
			t.Errorf("ListenLoopback(%q) listened; want refused", addr)
		}
	}
	l, err := ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestHostileInput(t *testing.T) {
	_, r := echoSetup(t, WithMaxBody(1024))
	ctx := ctxT(t)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"bad JSON", "POST", "/v1/request", `{"topic":`, 400, "bad JSON body"},
		{"not an object", "POST", "/v1/publish", `[1,2]`, 400, "bad JSON body"},
		{"unknown field", "POST", "/v1/publish", `{"topic":"t","paylod":"x"}`, 400, `unknown field "paylod"`},
		{"trailing data", "POST", "/v1/publish", `{"topic":"t"} {"topic":"u"}`, 400, "more data after the JSON object"},
		{"empty body", "POST", "/v1/publish", ``, 400, "empty body"},
		{"both payloads", "POST", "/v1/publish", `{"topic":"t","payload":"a","payload_b64":"YQ=="}`, 400, "not both"},
		{"bad base64", "POST", "/v1/publish", `{"topic":"t","payload_b64":"!!"}`, 400, "not standard base64"},
		{"no target", "POST", "/v1/publish", `{"payload":"x"}`, 400, "no target"},
		{"two targets", "POST", "/v1/publish", `{"topic":"t","client_id":"c"}`, 400, "at most one of"},
		{"bad topic", "POST", "/v1/publish", `{"topic":"a b"}`, 400, "spaces"},
		{"request without target", "POST", "/v1/request", `{"payload":"x"}`, 400, "no target"},
		{"request with a key", "POST", "/v1/request", `{"topic":"t","idempotency_key":"k"}`, 400, "for /v1/publish"},
		{"bad timeout", "POST", "/v1/request", `{"topic":"t","timeout":"forever"}`, 400, `"timeout" "forever"`},
		{"timeout too long", "POST", "/v1/request", `{"topic":"t","timeout":"1h"}`, 400, "at most 5m0s"},
		{"publish with timeout", "POST", "/v1/publish", `{"topic":"t","timeout":"1s"}`, 400, "for /v1/request"},
		{"huge body", "POST", "/v1/publish", `{"topic":"t","payload":"` + strings.Repeat("x", 4096) + `"}`, 413, "larger than 1024 bytes"},
		{"unknown path", "GET", "/v2/anything", ``, 404, "no such path"},
		{"root", "GET", "/", ``, 404, "GET /v1/events, GET /v1/status, POST /v1/publish, POST /v1/request"},
		{"wrong method", "GET", "/v1/request", ``, 405, "use POST"},
		{"wrong method on events", "DELETE", "/v1/events", ``, 405, "use GET"},
		{"bad Last-Event-ID", "GET", "/v1/events?last_event_id=abc", ``, 400, "want an event id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := r.call(t, ctx, tc.method, tc.path, tc.body)
			msg, _ := out["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.want) || out["retryable"] != false {
				t.Errorf("%d %v; want %d, an error with %q, not retryable", code, out, tc.code, tc.want)
			}
		})
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://agent/v1/publish", strings.NewReader(`{"topic":"t"}`))
	req.Header.Set("Content-Type", "text/plain")
	if resp, err := r.hc.Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %v %v; want 415", resp, err)
	} else {
		resp.Body.Close()
	}
}

// rawExchange writes req on a new connection and returns what comes back
// before the agent closes it.
func rawExchange(t *testing.T, sock, req string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestSlowCallersAreCutOff(t *testing.T) {
	_, r := echoSetup(t, WithReadTimeouts(200*time.Millisecond, 200*time.Millisecond))
	// Headers that never end: the connection is closed.
	if got := rawExchange(t, r.sock, "POST /v1/publish HTTP/1.1\r\nHost: a\r\n"); got != "" && !strings.Contains(got, "408") {
		t.Errorf("unfinished headers: got %q; want the connection closed", got)
	}
	// A body that never comes: 408 with a JSON error.
	got := rawExchange(t, r.sock, "POST /v1/publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"topic\":")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("slow body: %q: %v", got, err)
	}
	defer resp.Body.Close()
	var out apiError
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(out.Error, "took longer than 200ms") {
		t.Errorf("slow body: %d %+v %v; want 408 with a JSON error", resp.StatusCode, out, err)
	}
}

func TestLimits(t *testing.T) {
	n := startNode(t, "A")
	r := startAgent(t, []client.Option{client.WithAddrs(n.Addr), client.WithClientID("agent-1")}, WithLimits(2, 1), WithMaxStreams(1))
	ctx := ctxT(t)
	// A request nobody answers holds this process's one slot.
	hold, cancel := context.WithCancel(ctx)
	held := make(chan int, 1)
	go func() {
		code, _, _ := agenttest.Call(hold, r.hc, "POST", "/v1/request", `{"topic":"nobody","payload":"x","timeout":"1m"}`)
		held <- code
	}()
	eventually(t, "the request in flight", func() bool { return r.Status().InFlight == 1 })
	code, out := r.call(t, ctx, "POST", "/v1/publish", `{"topic":"t","payload":"x"}`)
	if code != http.StatusTooManyRequests || out["retryable"] != true || !strings.Contains(out["error"].(string), "the limit per caller") {
		t.Errorf("a second call from the same process: %d %v; want 429 retryable", code, out)
	}
	cancel()
	<-held
	// The call leaves the registry (Status) before its handler returns
	// and frees the caller's slot: wait for the slot itself.
	eventually(t, "the slot freed", func() bool {
		r.lim.mu.Lock()
		defer r.lim.mu.Unlock()
		return r.lim.inFlight == 0
	})
	if code, out := r.call(t, ctx, "POST", "/v1/publish", `{"topic":"t","payload":"x"}`); code != http.StatusAccepted {
		t.Errorf("after the slot freed: %d %v", code, out)
	}
	// Status and events are not calls; event streams have their own bound.
	openEvents(t, ctx, r, "")
	code, out = r.call(t, ctx, "GET", "/v1/events", "")
	if code != http.StatusServiceUnavailable || out["retryable"] != true {
		t.Errorf("a second event stream: %d %v; want 503", code, out)
	}
}

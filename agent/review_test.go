package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/agenttest"
)

// A request to a topic the agent is subscribed to comes back to the agent
// (the server delivers a topic's messages to their sender too): it is an
// event, not the request's reply. Nor is a request the agent sent to its
// own client id.
func TestOwnRequestIsNotItsReply(t *testing.T) {
	n := startNode(t, "A")
	svc := newSession(t, client.WithAddrs(n.Addr), client.WithClientID("svc"), client.WithTopics("svc.upper"))
	ctx := ctxT(t)
	if err := svc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	respond(t, svc, upper)
	r := startAgent(t, []client.Option{client.WithAddrs(n.Addr), client.WithClientID("agent-1"), client.WithTopics("svc.upper", "svc.none")})
	events := openEvents(t, ctx, r, "")
	for _, body := range []string{
		`{"topic":"svc.none","payload":"hello","timeout":"300ms"}`,
		`{"client_id":"agent-1","payload":"hello","timeout":"300ms"}`,
	} {
		if code, out := r.call(t, ctx, http.MethodPost, "/v1/request", body); code != http.StatusGatewayTimeout {
			t.Errorf("request %s, answered by nobody: %d %v; want 504 (the request is not its own reply)", body, code, out)
		}
		if e := events.nextMessage(t); e.data["payload"] != "hello" || e.data["source_client"] != "agent-1" {
			t.Errorf("event %+v; want the agent's own request", e)
		}
	}
	for range 5 {
		code, out := r.call(t, ctx, http.MethodPost, "/v1/request", `{"topic":"svc.upper","payload":"hello"}`)
		if code != http.StatusOK || out["payload"] != "HELLO" || out["source_client"] != "svc" {
			t.Fatalf("request to a subscribed topic: %d %v; want HELLO from svc", code, out)
		}
	}
}

// A reader without Last-Event-ID asked for nothing in particular: it is
// not told it missed what the buffer dropped.
func TestEventsNoMissedNoticeWithoutID(t *testing.T) {
	_, r := echoSetup(t, WithBuffer(2))
	ctx := ctxT(t)
	for i := range 5 {
		if code, out := r.call(t, ctx, http.MethodPost, "/v1/publish", fmt.Sprintf(`{"client_id":"agent-1","payload":"m%d","wait":true}`, i)); code != http.StatusOK {
			t.Fatalf("publish: %d %v", code, out)
		}
	}
	eventually(t, "m4 buffered", func() bool {
		evs, _, _ := r.events.since(0, false)
		return len(evs) > 0 && strings.Contains(string(evs[len(evs)-1].data), `"m4"`)
	})
	if e := openEvents(t, ctx, r, "").next(t); e.kind == "missed" || e.id == "" {
		t.Fatalf("first event without Last-Event-ID: %+v; want a buffered event, no missed notice", e)
	}
}

// Event ids of a new agent process start above those of an earlier one, so
// a reader coming back with an id of the earlier process is told it is
// unknown, rather than silently skipping the new process's first events.
func TestEventIDsOfANewProcessAreUnknownToIt(t *testing.T) {
	before := newEventLog(16, 1<<20)
	before.add("message", "a")
	before.add("message", "b")
	_, old := before.bounds()
	for uint64(time.Now().UnixMicro()) <= old { // a later process starts later
		time.Sleep(time.Microsecond)
	}
	after := newEventLog(16, 1<<20)
	for i := range 5 {
		after.add("message", i)
	}
	evs, missed, _ := after.since(old, true)
	if missed == nil || missed.Reason != "unknown_id" || len(evs) != 5 {
		t.Fatalf("after id %d of an earlier log: %d events, missed %+v; want all 5 and unknown_id", old, len(evs), missed)
	}
	if first, _ := after.bounds(); first <= old || first < uint64(time.Now().Add(-time.Hour).UnixMicro()) {
		t.Errorf("first id %d: want above %d, near the clock in microseconds", first, old)
	}
}

// The event buffer is bounded in bytes too: the oldest go first.
func TestEventBufferBytes(t *testing.T) {
	l := newEventLog(1000, 1000)
	big := strings.Repeat("x", 200)
	for range 20 {
		l.add("message", big)
	}
	evs, _, _ := l.since(0, false)
	l.mu.Lock()
	held := l.bytes
	l.mu.Unlock()
	if held > 1000 || len(evs) == 0 || len(evs) > 4 {
		t.Fatalf("%d events, %d bytes held; want at most 1000 bytes", len(evs), held)
	}
	first, last := l.bounds()
	if evs[0].id != first || evs[len(evs)-1].id != last || last-first+1 != uint64(len(evs)) {
		t.Errorf("events %d..%d, bounds %d..%d", evs[0].id, evs[len(evs)-1].id, first, last)
	}
	// One event over the budget is kept, alone.
	l.add("message", strings.Repeat("y", 5000))
	if evs, _, _ := l.since(0, false); len(evs) != 1 {
		t.Errorf("%d events after one over the budget; want it alone", len(evs))
	}
	if _, err := New([]client.Option{client.WithAddrs("127.0.0.1:1")}, WithBufferBytes(0)); err == nil || !strings.Contains(err.Error(), "WithBufferBytes") {
		t.Errorf("WithBufferBytes(0): %v; want refused", err)
	}
}

// writeLog records each Write separately.
type writeLog struct {
	syncWriter
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return w.syncWriter.Write(p)
}

// The buffered events go to a reader one by one, not built into one
// string of everything buffered.
func TestEventsWrittenOneByOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, err := New([]client.Option{client.WithAddrs("127.0.0.1:1")})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			a.events.add("message", i)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &writeLog{syncWriter: syncWriter{h: http.Header{}}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.handleEvents(w, httptest.NewRequest(http.MethodGet, "/v1/events", nil).WithContext(ctx))
		}()
		synctest.Wait()
		if n := strings.Count(w.String(), "event: message"); n != 3 {
			t.Fatalf("%d events written; want 3:\n%s", n, w)
		}
		w.mu.Lock()
		for _, s := range w.writes {
			if strings.Count(s, "id: ") > 1 {
				t.Errorf("one write holds several events: %q", s)
			}
		}
		w.mu.Unlock()
		cancel()
		<-done
		if err := a.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// A caller may hold only so many event streams.
func TestEventStreamsPerCaller(t *testing.T) {
	_, r := echoSetup(t, WithMaxStreams(10), WithCallerStreams(1))
	ctx := ctxT(t)
	openEvents(t, ctx, r, "")
	code, out := r.call(t, ctx, http.MethodGet, "/v1/events", "")
	if code != http.StatusTooManyRequests || out["retryable"] != true || !strings.Contains(out["error"].(string), "limit per caller") {
		t.Errorf("a second stream from the same process: %d %v; want 429", code, out)
	}
}

// Without the peer's credentials, the caller is refused (fail closed).
func TestPeerCredentialsFailClosed(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "a")
	c, err := net.FileConn(f)
	f.Close()
	syscall.Close(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, foreign := peerOf(c); foreign {
		t.Fatalf("an open connection of this user: foreign")
	}
	c.Close() // its credentials cannot be read now
	if caller, foreign := peerOf(c); !foreign {
		t.Errorf("a connection without readable credentials: caller %q, not foreign; want refused", caller)
	}
}

// A socket that fails to connect for another reason than "refused" may be
// live: it is left alone.
func TestStaleSocketOnlyWhenRefused(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	dial := dialStale
	t.Cleanup(func() { dialStale = dial })
	dialStale = func(path string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EAGAIN)}
	}
	if _, err := ListenUnix(sock); err == nil || !strings.Contains(err.Error(), "cannot tell whether another process listens") {
		t.Errorf("a socket that fails with EAGAIN: %v; want refused", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the socket: %v; want it left", err)
	}
	dialStale = dial
	l, err := ListenUnix(sock) // refused: stale, replaced
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// The loopback port refuses what a web page could send it: another Host
// (DNS rebinding), an Origin or a cross-site fetch, and bodies that are not
// application/json.
func TestLoopbackRefusesBrowsers(t *testing.T) {
	n := startNode(t, "A")
	a, err := New([]client.Option{client.WithAddrs(n.Addr), client.WithClientID("agent-1")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(l) }()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
		hc.CloseIdleConnections()
	})
	ctx := ctxT(t)
	port := l.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name, host, header, value, ct string
		code                          int
	}{
		{"plain", "", "", "", "application/json", 202},
		{"charset", "", "", "", "application/json; charset=utf-8", 202},
		{"localhost", fmt.Sprintf("localhost:%d", port), "", "", "application/json", 202},
		{"ipv6 loopback", fmt.Sprintf("[::1]:%d", port), "", "", "application/json", 202},
		{"rebound host", fmt.Sprintf("evil.example:%d", port), "", "", "application/json", 403},
		{"other host", "10.0.0.1", "", "", "application/json", 403},
		{"origin", "", "Origin", "https://evil.example", "application/json", 403},
		{"null origin", "", "Origin", "null", "application/json", 403},
		{"cross-site", "", "Sec-Fetch-Site", "cross-site", "application/json", 403},
		{"same-site", "", "Sec-Fetch-Site", "same-site", "application/json", 403},
		{"form", "", "", "", "application/x-www-form-urlencoded", 415},
		{"text", "", "", "", "text/plain", 415},
		{"none", "", "", "", "", 415},
		{"json-seq", "", "", "", "application/json-seq", 415},
		{"other charset", "", "", "", "application/json; charset=latin1", 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/publish", port), strings.NewReader(`{"topic":"t","payload":"x"}`))
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("%d; want %d", resp.StatusCode, tc.code)
			}
		})
	}
	// GETs too: a page must not read the event stream or the status.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v1/status", port), nil)
	req.Host = "evil.example"
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /v1/status with a rebound Host: %v %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}
}

// Calls still waiting when Shutdown's context ends get a retryable 503, not
// a dropped connection.
func TestShutdownAnswersWaitingCalls(t *testing.T) {
	n := startNode(t, "A")
	a, err := New([]client.Option{client.WithAddrs(n.Addr), client.WithClientID("agent-1")})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(l) }()
	hc := agenttest.UnixClient(sock)
	defer hc.CloseIdleConnections()
	type result struct {
		code int
		out  map[string]any
		err  error
	}
	held := make(chan result, 1)
	go func() {
		code, out, err := agenttest.Call(ctxT(t), hc, http.MethodPost, "/v1/request", `{"topic":"nobody","payload":"x","timeout":"1m"}`)
		held <- result{code, out, err}
	}()
	eventually(t, "the request in flight", func() bool { return a.Status().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.Shutdown(ctx); err == nil {
		t.Errorf("Shutdown with a call in flight past its context: nil; want the context's error")
	}
	<-served
	res := <-held
	msg, _ := res.out["error"].(string)
	if res.err != nil || res.code != http.StatusServiceUnavailable || res.out["retryable"] != true || !strings.Contains(msg, "shutting down") {
		t.Errorf("the waiting call: %d %v %v; want 503 retryable, shutting down", res.code, res.out, res.err)
	}
}

// A reply that reached its call after the call gave up (timed out) counts
// as late, not as replied.
func TestReplyAfterTheCallEndedIsLate(t *testing.T) {
	cs := newCalls()
	c := &call{reply: make(chan *client.Message, 1), failed: make(chan error, 1)}
	cs.pending["x"] = c
	if !cs.deliver(&client.Message{CorrelationID: "x"}) {
		t.Fatal("not delivered")
	}
	cs.end("x", c) // the caller's timeout won the race
	if _, replied, late := cs.counts(); replied != 0 || late != 1 {
		t.Errorf("replied %d, late %d; want 0 and 1", replied, late)
	}
	if !cs.late("x") {
		t.Error("a second reply: not late")
	}
	if _, _, late := cs.counts(); late != 2 {
		t.Errorf("late %d; want 2", late)
	}
}

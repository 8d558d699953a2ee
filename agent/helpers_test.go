package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/agenttest"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLong bounds every wait for something that must happen.
const waitLong = 20 * time.Second

// fastBackoff reconnects at once after a failure.
var fastBackoff = client.WithBackoff(backoff.Config{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond, Multiplier: 2, ResetAfter: time.Second})

// startNode starts a tether server with server id id; it is killed at
// cleanup if not before.
func startNode(t testing.TB, id string) *tethertest.Node {
	t.Helper()
	return tethertest.StartNode(t, nil, server.WithServerID(id))
}

// newSession returns an SDK session closed at cleanup.
func newSession(t testing.TB, opts ...client.Option) *client.Session {
	t.Helper()
	s, err := client.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// respond answers every request s receives with f(request) until the test
// ends; f returning nil means no reply.
func respond(t testing.TB, s *client.Session, f func(*client.Message) *client.Message) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				return
			}
			if r := f(m); r != nil {
				r.CorrelationID = m.CorrelationID
				_ = s.Send(ctx, *r)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// upper answers with the payload upper-cased.
func upper(m *client.Message) *client.Message {
	b := bytes.Clone(m.Payload)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return &client.Message{Payload: b}
}

// running is an agent serving on a Unix socket in a test.
type running struct {
	*Agent
	sock string
	hc   *http.Client
}

// startAgent serves an agent on a fresh Unix socket; it shuts down at
// cleanup.
func startAgent(t testing.TB, sessionOpts []client.Option, opts ...Option) *running {
	t.Helper()
	a, err := New(sessionOpts, opts...)
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
	r := &running{Agent: a, sock: sock, hc: agenttest.UnixClient(sock)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
		r.hc.CloseIdleConnections()
	})
	return r
}

// call posts body (JSON text) to path and returns the status and the
// decoded JSON response.
func (r *running) call(t *testing.T, ctx context.Context, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, out, err := agenttest.Call(ctx, r.hc, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, out
}

// eventually polls cond until it holds, failing after waitLong.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitLong)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id, kind string
	data     map[string]any
}

// sseStream reads events from GET /v1/events.
type sseStream struct {
	resp *http.Response
	rd   *bufio.Reader
}

func openEvents(t *testing.T, ctx context.Context, r *running, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, rd: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event, skipping comments.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	var e sseEvent
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && e.kind != "":
			return e
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.kind = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &e.data); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		}
	}
}

// nextMessage returns the next "message" event, skipping state events.
func (s *sseStream) nextMessage(t *testing.T) sseEvent {
	t.Helper()
	for {
		if e := s.next(t); e.kind != "state" {
			return e
		}
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

func TestConnectStatesAndCtrlC(t *testing.T) {
	_, addr := tethertest.Serve(t)
	r := start(t, "connect", "--addr", addr, "--client-id", "dev1", "--topic", "news")
	conn := r.await(map[string]string{"event": "state", "state": "connected"})

	first := r.lines()[0]
	if !first.matches(map[string]string{"event": "state", "state": "connecting", "time": "*"}) {
		t.Errorf("first line = %v; want the connecting state", first)
	}
	if !conn.matches(map[string]string{"backend": addr, "resumed": "false", "resume_status": "RESUME_STATUS_NOT_REQUESTED"}) {
		t.Errorf("connected line = %v; want backend %s, resumed false, RESUME_STATUS_NOT_REQUESTED", conn, addr)
	}
	if _, err := time.Parse(time.RFC3339Nano, conn.str("time")); err != nil {
		t.Errorf("connected line time: %v", err)
	}
	id := conn.str("session_id")
	list := listSessions(t, addr, "dev1")
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetSessionId() != id {
		t.Fatalf("the server has sessions %v; want the connected line's %q", list.GetSessions(), id)
	}
	if got := list.GetSessions()[0].GetTopics(); len(got) != 1 || got[0] != "news" {
		t.Errorf("session topics = %v; want [news]", got)
	}

	if code := r.interrupt(); code != 0 {
		t.Fatalf("Ctrl-C: exit %d; want 0; stderr:\n%s", code, r.stderr)
	}
	lines := r.lines()
	last := lines[len(lines)-1]
	if !last.matches(map[string]string{"event": "state", "state": "closed", "session_id": id}) || last["error"] != nil {
		t.Errorf("last line = %v; want the closed state without an error", last)
	}
	if r.stderr.String() != "" {
		t.Errorf("stderr after Ctrl-C:\n%s", r.stderr)
	}
	// The Close frame closed the session on the server.
	waitFor(t, "the session to be gone from the server", func() bool {
		return liveSessions(listSessions(t, addr, "dev1")) == 0
	})
}

func TestConnectPrintsMessages(t *testing.T) {
	srv, addr := tethertest.Serve(t)
	r := start(t, "connect", "--addr", addr, "--client-id", "dev1", "--topic", "news")
	r.await(map[string]string{"state": "connected"})

	// tether publish, in process: --data with a content type and headers.
	out := mustTether(t, "", "publish", "--addr", addr, "--topic", "news", "--data", "hello <world> & ü",
		"--content-type", "text/plain", "--header", "k=v", "--header", "trace=a=b")
	if out != `{"delivered":1,"duplicate":false}`+"\n" {
		t.Errorf("publish printed %q", out)
	}
	m := r.await(map[string]string{"event": "message", "payload": "hello <world> & ü"})
	if !m.matches(map[string]string{"seq": "1", "topic": "news", "content_type": "text/plain", "headers": "map[k:v trace:a=b]", "published_at": "*"}) {
		t.Errorf("message line = %v", m)
	}
	if !strings.Contains(r.stdout.String(), `"payload":"hello <world> & ü"`) {
		t.Errorf("the payload is not shown as sent (HTML-escaped?):\n%s", r.stdout)
	}

	// The payload from stdin, and an idempotency key.
	for i, want := range []string{`{"delivered":1,"duplicate":false}`, `{"delivered":0,"duplicate":true}`} {
		if out := mustTether(t, "from stdin\n", "publish", "--addr", addr, "--client-id", "dev1", "--idempotency-key", "k1"); out != want+"\n" {
			t.Errorf("publish %d printed %q; want %s", i, out, want)
		}
	}
	m = r.await(map[string]string{"event": "message", "payload": "from stdin\n"})
	if m.str("seq") != "2" || m["topic"] != nil {
		t.Errorf("message line = %v; want seq 2 and no topic", m)
	}

	// A binary payload from the server's own Publish.
	if _, err := srv.Publish(ctxT(t), broker.Client("dev1"), []byte{0, 1, 2, 0xff}, ""); err != nil {
		t.Fatal(err)
	}
	m = r.await(map[string]string{"event": "message", "seq": "3"})
	if m.str("payload_b64") != "AAEC/w==" || m["payload"] != nil {
		t.Errorf("binary message line = %v; want payload_b64 AAEC/w== and no payload", m)
	}

	// From another session: the source and the correlation id.
	sender, err := client.New(client.WithAddrs(addr), client.WithClientID("sender"))
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close(ctxT(t))
	if err := sender.SendWait(ctxT(t), client.Message{ClientID: "dev1", Payload: []byte("req"), CorrelationID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	m = r.await(map[string]string{"event": "message", "payload": "req"})
	if !m.matches(map[string]string{"seq": "4", "source_client": "sender", "source_session": "*", "correlation_id": "c-1"}) {
		t.Errorf("message line = %v; want seq 4 from sender with correlation id c-1", m)
	}

	// Every message was acked as it was printed.
	waitFor(t, "the server to have every message acked", func() bool {
		list := listSessions(t, addr, "dev1")
		return len(list.GetSessions()) == 1 && list.GetSessions()[0].GetLastAckedSeq() == 4
	})
	if code := r.interrupt(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, r.stderr)
	}
}

func TestConnectFailsOver(t *testing.T) {
	a := startServer(t, nil)
	b := startServer(t, nil)
	servers := map[string]*tethertest.Node{a.Addr: a, b.Addr: b}
	r := start(t, "connect", "--addr", a.Addr, "--addr", b.Addr, "--client-id", "dev1")
	first := r.await(map[string]string{"state": "connected"})
	used := servers[first.str("backend")]
	if used == nil {
		t.Fatalf("connected to %q; want %s or %s", first.str("backend"), a.Addr, b.Addr)
	}
	other := a
	if used == a {
		other = b
	}

	used.Stop()
	rec := r.await(map[string]string{"state": "reconnecting"})
	if rec.str("error") == "" || rec.str("session_id") != first.str("session_id") {
		t.Errorf("reconnecting line = %v; want an error and the session id %s", rec, first.str("session_id"))
	}
	// The in-memory broker keeps sessions per node: a fresh session there.
	second := r.await(map[string]string{"state": "connected", "backend": other.Addr})
	if second.str("resumed") != "false" || second.str("session_id") == first.str("session_id") {
		t.Errorf("second connected line = %v; want a fresh session (resumed false)", second)
	}

	out := mustTether(t, "", "publish", "--addr", other.Addr, "--client-id", "dev1", "--data", "after failover")
	if out != `{"delivered":1,"duplicate":false}`+"\n" {
		t.Errorf("publish printed %q", out)
	}
	r.await(map[string]string{"event": "message", "payload": "after failover"})
	if code := r.interrupt(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, r.stderr)
	}
}

// TestConnectResumedLineFirst checks that a resume's connected line comes
// before the messages the server replays on the new stream: the SDK calls
// OnState on a goroutine of its own, so without care the replay can be
// printed first.
func TestConnectResumedLineFirst(t *testing.T) {
	_, addr := tethertest.Serve(t)
	p, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	for run := range 3 {
		r := start(t, "connect", "--addr", p.Addr(), "--client-id", "dev1")
		r.await(map[string]string{"state": "connected"})
		p.Reset() // the stream breaks; the session waits on the server
		r.await(map[string]string{"state": "reconnecting"})
		for i := range 5 {
			mustTether(t, "", "publish", "--addr", addr, "--client-id", "dev1", "--data", fmt.Sprint("m", i))
		}
		r.await(map[string]string{"event": "message", "payload": "m4"})
		if code := r.interrupt(); code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, r.stderr)
		}
		var seq []string
		for _, e := range r.lines() {
			switch {
			case e.str("event") == "message":
				seq = append(seq, e.str("payload"))
			case e.str("event") == "state" && e.str("state") != "closed":
				seq = append(seq, e.str("state")+"/"+e.str("resumed"))
			}
		}
		want := "connecting/ connected/false reconnecting/ connected/true m0 m1 m2 m3 m4"
		if got := strings.Join(seq, " "); got != want {
			t.Errorf("run %d printed %s; want %s", run, got, want)
		}
	}
}

func TestConnectRTT(t *testing.T) {
	_, addr := tethertest.Serve(t, server.WithProfile(profile.Datacenter()))
	r := start(t, "connect", "--addr", addr, "--profile", "datacenter", "--heartbeat", "1s")
	rtt := r.await(map[string]string{"event": "rtt", "backend": addr})
	if ms, ok := rtt["ms"].(float64); !ok || ms <= 0 {
		t.Errorf("rtt line = %v; want ms > 0", rtt)
	}
	if code := r.interrupt(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, r.stderr)
	}
}

func TestConnectClosedByServer(t *testing.T) {
	_, addr := tethertest.Serve(t)
	r := start(t, "connect", "--addr", addr, "--client-id", "dev1")
	id := r.await(map[string]string{"state": "connected"}).str("session_id")

	out := mustTether(t, "", "sessions", "close", "--addr", addr, "--reason", "device retired", "--", id)
	if want := `{"session_id":"` + id + `","closed":true}` + "\n"; out != want {
		t.Errorf("sessions close printed %q; want %q", out, want)
	}
	if code := r.wait(); code != 1 {
		t.Errorf("exit %d after the server closed the session; want 1", code)
	}
	closed := r.await(map[string]string{"state": "closed"})
	if e := closed.str("error"); !strings.Contains(e, "GO_AWAY_REASON_CLOSED_BY_ADMIN") || !strings.Contains(e, "device retired") {
		t.Errorf("closed line = %v; want the go_away and the reason", closed)
	}
	lines := r.lines()
	if last := lines[len(lines)-1]; last.str("event") != "error" || !strings.Contains(last.str("error"), "device retired") {
		t.Errorf("last line = %v; want an error event", last)
	}
	if !strings.Contains(r.stderr.String(), "tether connect: the session ended") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// TestTokenEverywhere checks that --token, and TETHER_TOKEN, reach the
// server on every command.
func TestTokenEverywhere(t *testing.T) {
	seen := make(chan string, 100)
	auth := func(ctx context.Context, method string) {
		if strings.HasPrefix(method, "/tether.v1.") {
			seen <- method + " " + strings.Join(metadataAuth(ctx), ",")
		}
	}
	ts := startServer(t, []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			auth(ctx, info.FullMethod)
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			auth(ss.Context(), info.FullMethod)
			return h(srv, ss)
		}),
	})
	r := start(t, "connect", "--addr", ts.Addr, "--client-id", "dev1", "--token", "s3cret")
	r.await(map[string]string{"state": "connected"})
	mustTether(t, "", "publish", "--addr", ts.Addr, "--client-id", "dev1", "--data", "x", "--token", "s3cret")
	t.Setenv(envToken, "s3cret")
	t.Setenv(envAddr, ts.Addr) // and --addr from the environment
	mustTether(t, "", "sessions", "list")
	if code := r.interrupt(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, r.stderr)
	}
	want := map[string]bool{
		"/tether.v1.TetherService/Connect Bearer s3cret":     false,
		"/tether.v1.TetherService/Publish Bearer s3cret":     false,
		"/tether.v1.AdminService/ListSessions Bearer s3cret": false,
	}
	for len(seen) > 0 {
		got := <-seen
		if _, ok := want[got]; !ok {
			t.Errorf("the server saw %q", got)
		}
		want[got] = true
	}
	for call, ok := range want {
		if !ok {
			t.Errorf("the server never saw %q", call)
		}
	}
}

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestConnectStdoutFails(t *testing.T) {
	_, addr := tethertest.Serve(t)
	var stderr strings.Builder
	code := run(ctxT(t), []string{"connect", "--addr", addr}, nil, brokenPipe{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "tether connect: writing to stdout: broken pipe") {
		t.Errorf("exit %d, stderr %q; want 1 and the write error", code, stderr.String())
	}
}

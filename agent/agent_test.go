package agent

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// echoSetup starts a node, a responder on svc.upper and an agent, all on
// that node.
func echoSetup(t *testing.T, opts ...Option) (*tethertest.Node, *running) {
	t.Helper()
	n := startNode(t, "A")
	svc := newSession(t, client.WithAddrs(n.Addr), client.WithClientID("svc"), client.WithTopics("svc.upper"))
	ctx := ctxT(t)
	if err := svc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	respond(t, svc, func(m *client.Message) *client.Message {
		if string(m.Payload) == "fail" {
			return &client.Message{Payload: []byte("partial"), Headers: map[string]string{ReplyErrorHeader: "exit status 3: boom"}}
		}
		return upper(m)
	})
	return n, startAgent(t, []client.Option{client.WithAddrs(n.Addr), client.WithClientID("agent-1")}, opts...)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

func TestRequestReply(t *testing.T) {
	_, r := echoSetup(t)
	ctx := ctxT(t)
	code, out := r.call(t, ctx, http.MethodPost, "/v1/request", `{"topic":"svc.upper","payload":"hello","timeout":"10s"}`)
	if code != http.StatusOK || out["payload"] != "HELLO" || out["source_client"] != "svc" {
		t.Fatalf("request: %d %v; want 200 HELLO from svc", code, out)
	}
	code, out = r.call(t, ctx, http.MethodPost, "/v1/request", `{"topic":"svc.upper","payload_b64":"AP9h"}`)
	if code != http.StatusOK || out["payload_b64"] != "AP9B" {
		t.Fatalf("binary request: %d %v; want 200 payload_b64 AP9B", code, out)
	}
	code, out = r.call(t, ctx, http.MethodPost, "/v1/request", `{"topic":"svc.upper","payload":"fail"}`)
	reply, _ := out["reply"].(map[string]any)
	if code != http.StatusBadGateway || out["error"] != "the responder failed: exit status 3: boom" || out["retryable"] != false || reply["payload"] != "partial" {
		t.Fatalf("failing responder: %d %v; want 502 with the error and the reply", code, out)
	}
	code, out = r.call(t, ctx, http.MethodPost, "/v1/publish", `{"client_id":"dev1","payload":"x","wait":true}`)
	if code != http.StatusNotFound || out["retryable"] != false || !strings.Contains(out["error"].(string), `the server refused the message: no session for client "dev1"`) {
		t.Fatalf("publish to an absent client id: %d %v; want 404 naming it", code, out)
	}
	code, out = r.call(t, ctx, http.MethodPost, "/v1/request", `{"client_id":"dev1","payload":"x","timeout":"5s"}`)
	if code != http.StatusNotFound {
		t.Fatalf("request to an absent client id: %d %v; want 404", code, out)
	}
	code, out = r.call(t, ctx, http.MethodPost, "/v1/request", `{"topic":"nobody.home","payload":"x","timeout":"50ms"}`)
	if code != http.StatusGatewayTimeout || out["retryable"] != true || !strings.Contains(out["error"].(string), "no reply within 50ms") {
		t.Fatalf("request without responder: %d %v; want 504 retryable", code, out)
	}
	st := r.Status()
	if st.Replied != 3 || st.InFlight != 0 || st.State != "connected" || st.FreshSessions != 1 {
		t.Errorf("status %+v; want 3 replied, none in flight, connected, one session", st)
	}
}

func TestPublishAndEvents(t *testing.T) {
	_, r := echoSetup(t)
	ctx := ctxT(t)
	code, out := r.call(t, ctx, http.MethodGet, "/v1/status", "")
	if code != http.StatusOK {
		t.Fatalf("status: %d %v", code, out)
	}
	events := openEvents(t, ctx, r, "")
	for i := range 3 {
		// To the agent's own client id: the message comes back as an event.
		code, out := r.call(t, ctx, http.MethodPost, "/v1/publish", fmt.Sprintf(`{"client_id":"agent-1","payload":"m%d","wait":true,"headers":{"k":"v"}}`, i))
		if code != http.StatusOK || out["acked"] != true {
			t.Fatalf("publish with wait: %d %v", code, out)
		}
	}
	code, out = r.call(t, ctx, http.MethodPost, "/v1/publish", `{"client_id":"agent-1","payload":"m3"}`)
	if code != http.StatusAccepted || out["acked"] != false {
		t.Fatalf("publish: %d %v; want 202", code, out)
	}
	var ids []string
	for i := range 4 {
		e := events.nextMessage(t)
		if e.kind != "message" || e.data["payload"] != fmt.Sprint("m", i) || e.data["source_client"] != "agent-1" {
			t.Fatalf("event %d: %+v", i, e)
		}
		ids = append(ids, e.id)
	}
	// A reader that reconnects after the second message gets the rest.
	again := openEvents(t, ctx, r, ids[1])
	for _, want := range []string{"m2", "m3"} {
		if e := again.nextMessage(t); e.data["payload"] != want {
			t.Fatalf("after Last-Event-ID %s: %+v; want %s", ids[1], e, want)
		}
	}
	// One with an id this agent never issued is told so, and gets all.
	restarted := openEvents(t, ctx, r, "999999")
	if e := restarted.next(t); e.kind != "missed" || e.data["reason"] != "unknown_id" || e.id != "" {
		t.Fatalf("after an unknown id: %+v; want a missed event", e)
	}
	if e := restarted.next(t); e.id != fmt.Sprint(r.events.base) || e.kind != "state" {
		t.Fatalf("after the missed notice: %+v; want event %d, the first: the connecting state", e, r.events.base)
	}
}

func TestEventsMissedWhenTheBufferOverflows(t *testing.T) {
	_, r := echoSetup(t, WithBuffer(4))
	ctx := ctxT(t)
	for i := range 10 {
		if code, out := r.call(t, ctx, http.MethodPost, "/v1/publish", fmt.Sprintf(`{"client_id":"agent-1","payload":"m%d","wait":true}`, i)); code != http.StatusOK {
			t.Fatalf("publish: %d %v", code, out)
		}
	}
	var last uint64
	eventually(t, "m9 buffered", func() bool {
		_, last = r.events.bounds()
		evs, _, _ := r.events.since(last-1, true)
		return len(evs) == 1 && strings.Contains(string(evs[0].data), `"m9"`)
	})
	base := r.events.base
	s := openEvents(t, ctx, r, fmt.Sprint(base))
	e := s.next(t)
	if e.kind != "missed" || e.data["reason"] != "buffer_overflow" || e.data["first"] != float64(base+1) || e.data["last"] != float64(last-4) {
		t.Fatalf("first event %+v; want missed %d..%d", e, base+1, last-4)
	}
	for _, want := range []string{"m6", "m7", "m8", "m9"} {
		e := s.next(t)
		if e.data["payload"] != want {
			t.Fatalf("event %+v; want %s", e, want)
		}
		if id, _ := strconv.ParseUint(e.id, 10, 64); id <= last-4 || id > last {
			t.Fatalf("event id %s outside %d..%d", e.id, last-3, last)
		}
	}
}

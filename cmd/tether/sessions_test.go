package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
)

// listSessions runs tether sessions list and parses its output: a
// SessionInfo per line, and the next page's token on stderr.
func listSessions(t *testing.T, addr, clientID string, more ...string) *tetherv1.ListSessionsResponse {
	t.Helper()
	args := append([]string{"sessions", "list", "--addr", addr, "--client-id", clientID}, more...)
	code, out, stderr := tether(t, "", args...)
	if code != exitOK {
		t.Fatalf("tether %v exited %d; stderr:\n%s", args, code, stderr)
	}
	var resp tetherv1.ListSessionsResponse
	for line := range strings.Lines(out) {
		var s tetherv1.SessionInfo
		if err := protojson.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("sessions list printed a line that is no SessionInfo (%v):\n%s", err, out)
		}
		resp.Sessions = append(resp.Sessions, &s)
	}
	if _, next, ok := strings.Cut(stderr, "--page-token "); ok {
		resp.NextPageToken, _, _ = strings.Cut(next, " ")
	}
	return &resp
}

// waitFor waits, at most waitLong, until cond holds, checking it every few
// milliseconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, waitLong)
		}
		<-tick.C
	}
}

// metadataAuth returns the authorization values of an incoming call.
func metadataAuth(ctx context.Context) []string {
	return metadata.ValueFromIncomingContext(ctx, "authorization")
}

// connectSDK opens a session with the SDK, closed at cleanup.
func connectSDK(t *testing.T, addr, clientID string) *client.Session {
	t.Helper()
	s, err := client.New(client.WithAddrs(addr), client.WithClientID(clientID), client.WithTopics("news"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctxT(t)) })
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessions(t *testing.T) {
	_, addr := tethertest.Serve(t)
	s1 := connectSDK(t, addr, "dev1")
	s2 := connectSDK(t, addr, "dev2")
	id1, id2 := s1.Stats().SessionID, s2.Stats().SessionID

	// list, filtered and paged; the JSON is protojson's lowerCamelCase.
	list := listSessions(t, addr, "dev1")
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetSessionId() != id1 ||
		list.GetSessions()[0].GetState() != tetherv1.SessionState_SESSION_STATE_CONNECTED {
		t.Errorf("list --client-id dev1 = %v; want the connected session %s", list.GetSessions(), id1)
	}
	page := listSessions(t, addr, "", "--page-size", "1")
	if len(page.GetSessions()) != 1 || page.GetSessions()[0].GetSessionId() != id2 || page.GetNextPageToken() == "" {
		t.Errorf("list --page-size 1 = %v; want the newest session %s and a next page token", page, id2)
	}
	page = listSessions(t, addr, "", "--page-size", "1", "--page-token", page.GetNextPageToken())
	if len(page.GetSessions()) != 1 || page.GetSessions()[0].GetSessionId() != id1 || page.GetNextPageToken() != "" {
		t.Errorf("second page = %v; want %s and no more pages", page, id1)
	}
	if out := mustTether(t, "", "sessions", "list", "--addr", addr, "--client-id", "dev1"); strings.Count(out, "\n") != 1 ||
		events(t, out)[0].str("clientId") != "dev1" {
		t.Errorf("list output is not one JSON line with \"clientId\": \"dev1\":\n%s", out)
	}

	// get: the session and its flight recorder.
	out := mustTether(t, "", "sessions", "get", "--addr", addr, "--", id1)
	var got tetherv1.GetSessionResponse
	if err := protojson.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("sessions get printed no GetSessionResponse (%v):\n%s", err, out)
	}
	if got.GetSession().GetClientId() != "dev1" || len(got.GetEvents()) == 0 ||
		got.GetEvents()[0].GetKind() != tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED {
		t.Errorf("sessions get = %v; want dev1 with a CONNECTED event first", &got)
	}

	// close: the session ends for good.
	if out := mustTether(t, "", "sessions", "close", "--addr", addr, "--reason", "bye", "--", id1); out != `{"session_id":"`+id1+`","closed":true}`+"\n" {
		t.Errorf("sessions close printed %q", out)
	}
	waitFor(t, "dev1's session to close", func() bool { return s1.State() == client.StateClosed })
	if n := liveSessions(listSessions(t, addr, "dev1")); n != 0 {
		t.Errorf("dev1 still has %d sessions after close", n)
	}

	// Failures: exit 1 with the server's word.
	for _, args := range [][]string{
		{"sessions", "get", "nope", "--addr", addr},
		{"sessions", "close", "--addr", addr, "--", "-nope"},
	} {
		code, _, stderr := tether(t, "", args...)
		if code != 1 || !strings.Contains(stderr, "NotFound") || !strings.Contains(stderr, "nope\"") {
			t.Errorf("tether %v: exit %d, stderr %q; want 1 and NotFound", args, code, stderr)
		}
	}
}

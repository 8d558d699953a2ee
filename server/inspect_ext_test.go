package server_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// ids returns the client ids of a page, in order.
func ids(p server.SessionPage) []string {
	var out []string
	for _, s := range p.Sessions {
		out = append(out, s.ClientID)
	}
	return out
}

// QuerySessions filters, orders and pages on the server.
func TestQuerySessions(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	open := func(client, principal string, topics ...string) *conn {
		c := n.dial(t, principal)
		c.open(&tetherv1.Hello{ClientId: client, Topics: topics})
		return c
	}
	open("dev-a", "fleet", "fleet.eu")
	open("dev-b", "fleet", "fleet.us")
	slow := open("dev-c", "ops", "alerts")
	open("svc-d", "ops", "alerts", "fleet.eu")
	gone := open("svc-e", "ops")
	gone.cancel()
	waitFor(t, func() bool {
		counts, _ := n.srv.SessionCounts()
		return counts[tetherv1.SessionState_SESSION_STATE_DETACHED] == 1
	})
	// dev-c gets three messages it never acks.
	for range 3 {
		if _, err := n.srv.Publish(context.Background(), brokerClient("dev-c"), []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if slow.next().GetMessage() == nil {
			t.Fatal("want dev-c's messages")
		}
	}

	for _, tc := range []struct {
		name string
		q    server.SessionQuery
		want []string
	}{
		{"newest first", server.SessionQuery{}, []string{"svc-e", "svc-d", "dev-c", "dev-b", "dev-a"}},
		{"oldest first, a page", server.SessionQuery{Desc: true, Offset: 1, Limit: 2}, []string{"dev-b", "dev-c"}},
		{"client id, any case", server.SessionQuery{ClientID: "DEV-"}, []string{"dev-c", "dev-b", "dev-a"}},
		{"topic", server.SessionQuery{Topic: "fleet.eu"}, []string{"svc-d", "dev-a"}},
		{"principal and state", server.SessionQuery{Principal: "ops", State: tetherv1.SessionState_SESSION_STATE_CONNECTED}, []string{"svc-d", "dev-c"}},
		{"detached", server.SessionQuery{State: tetherv1.SessionState_SESSION_STATE_DETACHED}, []string{"svc-e"}},
		{"most unacked first", server.SessionQuery{Sort: server.SortUnacked, Desc: true, Limit: 1}, []string{"dev-c"}},
		{"past the end", server.SessionQuery{Offset: 99}, nil},
	} {
		page := n.srv.QuerySessions(tc.q)
		if got := ids(page); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
		if page.Total != 5 {
			t.Errorf("%s: total %d; want 5", tc.name, page.Total)
		}
	}
	page := n.srv.QuerySessions(server.SessionQuery{ClientID: "dev-c"})
	if page.Matched != 1 || page.ByState[tetherv1.SessionState_SESSION_STATE_CONNECTED] != 4 {
		t.Fatalf("matched %d, by state %v; want 1 and 4 connected", page.Matched, page.ByState)
	}
	c := page.Sessions[0]
	if c.Unacked != 3 || c.Principal != "ops" || !slices.Equal(c.Topics, []string{"alerts"}) || c.LastActivity.IsZero() {
		t.Fatalf("dev-c = %+v; want 3 unacked, principal ops, topic alerts, a last activity", c)
	}
}

// InspectSession shows the flight recorder, with the client's pings; Kick
// ends the session for good.
func TestInspectAndKick(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "k", Metadata: map[string]string{"app": "x"}})
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: 1, SentAt: timestamppb.Now()}}})
	if c.next().GetPong() == nil {
		t.Fatal("want a pong")
	}
	in, err := n.srv.InspectSession(w.GetSessionId())
	if err != nil {
		t.Fatal(err)
	}
	var kinds []tetherv1.SessionEventKind
	for _, e := range in.Events {
		kinds = append(kinds, e.Kind)
	}
	want := []tetherv1.SessionEventKind{tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED, tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING}
	if !slices.Equal(kinds, want) || in.Metadata["app"] != "x" || in.ClientID != "k" {
		t.Fatalf("inspection = %+v; want events %v and metadata app=x", in, want)
	}
	if draining, streams := n.srv.Draining(); draining || streams != 1 {
		t.Fatalf("Draining() = %v, %d; want false, 1", draining, streams)
	}

	if err := n.srv.Kick(w.GetSessionId(), "maintenance"); err != nil {
		t.Fatal(err)
	}
	ga := c.next().GetGoAway()
	if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_CLOSED_BY_ADMIN || !contains(ga.GetMessage(), "maintenance") {
		t.Fatalf("go_away = %v", ga)
	}
	c.expectEnd(codes.OK, "")
	if _, err := n.srv.InspectSession(w.GetSessionId()); !errors.Is(err, server.ErrNoSession) {
		t.Fatalf("InspectSession after the kick: %v; want ErrNoSession", err)
	}
	if err := n.srv.Kick(w.GetSessionId(), ""); !errors.Is(err, server.ErrNoSession) {
		t.Fatalf("Kick again: %v; want ErrNoSession", err)
	}
	if err := n.srv.BrokerErr(); err != nil {
		t.Fatalf("BrokerErr() = %v; want nil", err)
	}
}

// The order is stable under ties: the session id breaks them.
func TestQuerySessionsTies(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	for range 4 {
		n.dial(t, "").open(&tetherv1.Hello{})
	}
	asc := n.srv.QuerySessions(server.SessionQuery{Sort: server.SortRTT})
	desc := n.srv.QuerySessions(server.SessionQuery{Sort: server.SortRTT, Desc: true})
	for i := range asc.Sessions {
		if asc.Sessions[i].ID != desc.Sessions[len(desc.Sessions)-1-i].ID {
			t.Fatal("descending is not ascending reversed")
		}
		if i > 0 && asc.Sessions[i-1].ID > asc.Sessions[i].ID {
			t.Fatal("equal RTTs are not ordered by session id")
		}
	}
}

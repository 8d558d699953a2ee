package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Regressions for what the fuzz targets and the hostile-input matrix found.

func TestRegressHugeSubscribeIsRefusedQuickly(t *testing.T) {
	n := startNode(t)
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "q"})
	topics := make([]string, 100_000)
	for i := range topics {
		topics[i] = fmt.Sprintf("%x", i)
	}
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: topics}}})
	if e := c.next().GetError(); codes.Code(e.GetCode()) != codes.ResourceExhausted {
		t.Fatalf("got %v", e)
	}
	// The session lock was not held for long: admin calls answer.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := n.admin().ListSessions(ctx, &tetherv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestRegressCloseReasonCutOnARuneBoundary(t *testing.T) {
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{})
	if _, err := n.admin().CloseSession(context.Background(), &tetherv1.CloseSessionRequest{
		SessionId: w.GetSessionId(), Reason: strings.Repeat("a", 41) + strings.Repeat("é", 20)}); err != nil {
		t.Fatal(err)
	}
	if g := c.next().GetGoAway(); g.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_CLOSED_BY_ADMIN {
		t.Fatalf("go_away = %v", g)
	}
	c.expectEnd(codes.OK, "")
}

func TestRegressInvalidUTF8HeaderIsRefusedAtPublish(t *testing.T) {
	n := startNode(t)
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{})
	_, err := n.srv.Publish(context.Background(), brokerSession(w.GetSessionId()), []byte("x"), "",
		server.WithHeaders(map[string]string{"k": "\xff"}))
	if statusCode(err) != codes.InvalidArgument {
		t.Fatalf("Publish with an invalid UTF-8 header: %v", err)
	}
	c.noFrame()
	if _, err := n.srv.Publish(context.Background(), brokerSession(w.GetSessionId()), []byte("fine"), ""); err != nil {
		t.Fatal(err)
	}
	if m := c.message(); string(m.GetPayload()) != "fine" {
		t.Fatalf("the session did not survive: %v", m)
	}
}

// A tap handle of the application's (WithInTapHandle) runs beside the one
// GRPCServerOptions installs: it sees every stream and may refuse one,
// and sessions still work.
func TestWithInTapHandle(t *testing.T) {
	var seen atomic.Int32
	refuse := func(ctx context.Context, info *tap.Info) (context.Context, error) {
		seen.Add(1)
		if info.FullMethodName == tetherv1.AdminService_ListSessions_FullMethodName {
			return nil, status.Error(codes.PermissionDenied, "refused by the application's tap")
		}
		return ctx, nil
	}
	n := startNode(t, server.WithInTapHandle(refuse))
	c := n.dial(t, "")
	if w := c.open(&tetherv1.Hello{ClientId: "tapped"}); w.GetSessionId() == "" {
		t.Fatalf("welcome without a session: %v", w)
	}
	_, err := n.admin().ListSessions(context.Background(), &tetherv1.ListSessionsRequest{})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "refused by the application's tap") {
		t.Fatalf("ListSessions: %v, want the tap's PermissionDenied", err)
	}
	if seen.Load() < 2 {
		t.Fatalf("the tap saw %d streams, want the Connect and the ListSessions", seen.Load())
	}
	if _, err := server.New(server.WithInTapHandle(nil)); err == nil || !strings.Contains(err.Error(), "WithInTapHandle") {
		t.Fatalf("New(WithInTapHandle(nil)) = %v, want an error naming the option", err)
	}
}

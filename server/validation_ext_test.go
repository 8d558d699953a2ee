package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Bad input that the fuzz targets and the hostile-input matrix found is
// refused quickly, with a clear code, and the session survives it.

func TestHugeSubscribeIsRefusedQuickly(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	c := n.dial(t, "")
	c.open(&tetherv1.Hello{ClientId: "q"})
	topics := make([]string, 100_000)
	for i := range topics {
		topics[i] = fmt.Sprintf("%x", i)
	}
	c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: topics}}})
	if e := c.next().GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument {
		t.Fatalf("got %v", e)
	}
	// The session lock was not held for long: admin calls answer.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := n.admin().ListSessions(ctx, &tetherv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestCloseReasonCutOnARuneBoundary(t *testing.T) {
	t.Parallel()
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

func TestInvalidUTF8HeaderIsRefusedAtPublish(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := startNodeInBubble(t)
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
	})
}

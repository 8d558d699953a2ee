package server_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// testAuthz reads the principal from metadata: "banned" may not connect,
// only "admin" may administer, nobody may publish to or subscribe to
// topics starting "secret", and "brief" expires 10 minutes after the start
// of the test.
type testAuthz struct{ expiry time.Time }

func (testAuthz) Connect(ctx context.Context) error {
	if principalFromMD(ctx) == "banned" {
		return status.Error(codes.PermissionDenied, "principal banned may not connect")
	}
	return nil
}

func (testAuthz) Subscribe(_ context.Context, topic string) error {
	if strings.HasPrefix(topic, "secret") {
		return status.Errorf(codes.PermissionDenied, "may not subscribe to %q", topic)
	}
	return nil
}

func (testAuthz) Publish(_ context.Context, to broker.Address) error {
	if to.Kind == broker.KindTopic && strings.HasPrefix(to.Name, "secret") {
		return status.Errorf(codes.PermissionDenied, "may not publish to %q", to.Name)
	}
	return nil
}

func (testAuthz) Admin(ctx context.Context) error {
	if principalFromMD(ctx) != "admin" {
		return status.Error(codes.PermissionDenied, "admin permission required")
	}
	return nil
}

func (a testAuthz) Expires(ctx context.Context) time.Time {
	if principalFromMD(ctx) == "brief" {
		return a.expiry
	}
	return time.Time{}
}

func TestAuthorizerDecisions(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithAuthorizer(testAuthz{}))
	t.Run("connect", func(t *testing.T) {
		c := n.dial(t, "banned")
		c.send(hello(&tetherv1.Hello{}))
		c.expectEnd(codes.PermissionDenied, "may not connect")
	})
	t.Run("subscribe in hello", func(t *testing.T) {
		c := n.dial(t, "user")
		c.send(hello(&tetherv1.Hello{Topics: []string{"news", "secret.plans"}}))
		c.expectEnd(codes.PermissionDenied, `may not subscribe to "secret.plans"`)
	})
	t.Run("subscribe frame and publish", func(t *testing.T) {
		c := n.dial(t, "user")
		c.open(&tetherv1.Hello{ClientId: "u"})
		c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: []string{"secret.x"}}}})
		if e := c.next().GetError(); codes.Code(e.GetCode()) != codes.PermissionDenied {
			t.Fatalf("subscribe: %v", e)
		}
		c.send(toTopic(1, "secret.x", "leak"))
		for {
			f := c.next()
			if e := f.GetError(); e != nil {
				if codes.Code(e.GetCode()) != codes.PermissionDenied || e.GetSeq() != 1 {
					t.Fatalf("publish: %v", e)
				}
				break
			}
		}
		if a := c.ackFrame(); a.GetSeq() != 1 {
			t.Fatalf("the refused message was not acked: %v", a)
		}
	})
	t.Run("publish rpc", func(t *testing.T) {
		_, err := n.tether().Publish(context.Background(), &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "secret"}, Payload: []byte("x")})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("Publish: %v", err)
		}
	})
	t.Run("admin", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), principalKey, "user")
		if _, err := n.admin().ListSessions(ctx, &tetherv1.ListSessionsRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("ListSessions as user: %v", err)
		}
		ctx = metadata.AppendToOutgoingContext(context.Background(), principalKey, "admin")
		if _, err := n.admin().ListSessions(ctx, &tetherv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("ListSessions as admin: %v", err)
		}
	})
}

func TestCredentialsExpireMidSession(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		expiry := time.Now().Add(10 * time.Minute)
		b := startBubbleNode(t, noMaxAge(), server.WithPrincipal(principalFromMD), server.WithAuthorizer(testAuthz{expiry: expiry}))
		ctx := metadata.AppendToOutgoingContext(context.Background(), principalKey, "brief")
		s, err := tetherv1.NewTetherServiceClient(b.cc).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(hello(&tetherv1.Hello{HeartbeatInterval: durationpbNew(time.Minute)})); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := s.Recv()
			if err != nil {
				st := status.Convert(err)
				if st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "credentials expired") {
					t.Fatalf("ended with %v", st)
				}
				if !time.Now().Equal(expiry) {
					t.Fatalf("ended at %v, want the expiry %v", time.Now(), expiry)
				}
				return
			}
			if p := f.GetPing(); p != nil { // stay alive until then
				_ = s.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: p.GetId()}}})
			}
		}
	})
}

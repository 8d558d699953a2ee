package auth_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/tetherhq/tether/auth"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// The Authorizer satisfies the server's interface.
var (
	_ server.Authorizer = auth.Authorizer{}
	_ server.Authorizer = (*auth.Authorizer)(nil)
)

// startServer runs a tether server wired as the package documentation
// shows: bearer tokens from store on every call but health checks, the
// Authorizer, and sessions bound to the principal. It returns a client
// connection; everything stops at the end of the test.
func startServer(t *testing.T, store *auth.TokenStore) *grpc.ClientConn {
	t.Helper()
	srv, err := server.New(server.WithAuthorizer(auth.Authorizer{}), server.WithPrincipal(auth.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	authn := auth.BearerAuth(store)
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	gs := grpc.NewServer(append(srv.GRPCServerOptions(),
		grpc.ChainStreamInterceptor(selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(authn), notHealth)),
		grpc.ChainUnaryInterceptor(selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(authn), notHealth)),
	)...)
	srv.Register(gs)
	t.Cleanup(func() { _ = srv.Close() }) // after the server stops
	return tethertest.ServeGRPC(t, gs)
}

// as returns a context with a bearer token and the default test timeout.
func as(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestServer runs the package against the real server end to end.
func TestServer(t *testing.T) {
	t.Parallel()
	cc := startServer(t, mustLoad(t, testTokens()))
	tether := tetherv1.NewTetherServiceClient(cc)
	admin := tetherv1.NewAdminServiceClient(cc)
	publish := func(token, topic string) error {
		_, err := tether.Publish(as(t, token), &tetherv1.PublishRequest{
			Target: &tetherv1.PublishRequest_Topic{Topic: topic}, Payload: []byte("x"),
		})
		return err
	}
	// connect opens a session and returns the first frame's error or nil.
	connect := func(token string, topics ...string) error {
		s, err := tether.Connect(as(t, token))
		if err != nil {
			return err
		}
		if err := s.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{ClientId: "c1", Topics: topics}}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		} // io.EOF: the server ended the stream already; Recv has its status
		f, err := s.Recv()
		if err != nil {
			return err
		}
		if f.GetWelcome() == nil {
			t.Fatalf("first frame %v, want Welcome", f)
		}
		return s.CloseSend()
	}

	t.Run("health needs no token", func(t *testing.T) {
		if _, err := healthpb.NewHealthClient(cc).Check(as(t, ""), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("publish", func(t *testing.T) {
		wantCode(t, publish("", "fleet.x"), codes.Unauthenticated, "no credentials: send authorization: bearer TOKEN")
		wantCode(t, publish("wrong", "fleet.x"), codes.Unauthenticated, "unknown bearer token")
		wantCode(t, publish(tokenOld, "fleet.x"), codes.Unauthenticated, "expired")
		if err := publish(tokenA, "fleet.x"); err != nil {
			t.Errorf("svc-a to fleet.x: %v", err)
		}
		wantCode(t, publish(tokenA, "billing.x"), codes.PermissionDenied, `principal "svc-a" lacks permission "publish" on topic "billing.x"`)
	})
	t.Run("admin", func(t *testing.T) {
		if _, err := admin.ListSessions(as(t, tokenOps), &tetherv1.ListSessionsRequest{}); err != nil {
			t.Errorf("ops: %v", err)
		}
		_, err := admin.ListSessions(as(t, tokenA), &tetherv1.ListSessionsRequest{})
		wantCode(t, err, codes.PermissionDenied, `principal "svc-a" lacks permission "admin"`)
	})
	t.Run("connect", func(t *testing.T) {
		wantCode(t, connect(""), codes.Unauthenticated, "no credentials")
		wantCode(t, connect(tokenOps), codes.PermissionDenied, `principal "ops" lacks permission "connect"`)
		wantCode(t, connect(tokenA, "svc.a.events", "svc.b.events"), codes.PermissionDenied, `lacks permission "subscribe" on topic "svc.b.events"`)
		if err := connect(tokenA, "svc.a.events"); err != nil {
			t.Errorf("svc-a: %v", err)
		}
	})
}

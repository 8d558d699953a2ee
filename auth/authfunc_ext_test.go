package auth_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/auth"
)

func TestBearerAuth(t *testing.T) {
	t.Parallel()
	fn := auth.BearerAuth(mustLoad(t, testTokens()))
	tests := []struct {
		name string
		ctx  context.Context
		want []string // message parts of the Unauthenticated error
	}{
		{"no metadata", context.Background(), []string{"no credentials: send authorization: bearer TOKEN"}},
		{"other header", metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-token", tokenA)), []string{"no credentials"}},
		{"no scheme", withBearer(tokenA), []string{`not "bearer TOKEN"`}},
		{"basic scheme", withBearer("Basic " + tokenA), []string{`not "bearer TOKEN"`}},
		{"empty token", withBearer("bearer "), []string{"empty bearer token"}},
		{"blank token", withBearer("bearer    "), []string{"empty bearer token"}},
		{"garbage", withBearer("bearer not-a-token"), []string{"unknown bearer token"}},
		{"hash instead of token", withBearer("bearer " + auth.HashToken(tokenA)), []string{"unknown bearer token"}},
		{"expired", withBearer("bearer " + tokenOld), []string{`principal "old"`, "expired at 2001-02-03T04:05:06Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, err := fn(tc.ctx)
			if ctx != nil {
				t.Errorf("a refused call got a context")
			}
			wantCode(t, err, codes.Unauthenticated, tc.want...)
			wantNoSecret(t, err, tokenA, tokenOld, auth.HashToken(tokenA))
		})
	}
	for _, header := range []string{"bearer " + tokenA, "Bearer " + tokenA, "BEARER  " + tokenA + " "} {
		ctx, err := fn(withBearer(header))
		if err != nil {
			t.Fatalf("%q: %v", header, err)
		}
		if p := principalOf(t, ctx); p.Name != "svc-a" || !p.Perms.Connect {
			t.Errorf("%q: principal %+v", header, p)
		}
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) != 1 {
			t.Error("the returned context is not a child of the call's")
		}
	}
}

// TestBearerAuthSeesReload checks that the AuthFunc consults the store on
// every call.
func TestBearerAuthSeesReload(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testTokens())
	fn := auth.BearerAuth(s)
	held, err := fn(withBearer("bearer " + tokenA))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.Path(), `{"principals": []}`)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = fn(withBearer("bearer " + tokenA))
	wantCode(t, err, codes.Unauthenticated, "unknown bearer token")
	// The stream that authenticated before keeps its principal.
	if err := (auth.Authorizer{}).Connect(held); err != nil {
		t.Errorf("Connect with the principal from before the reload = %v", err)
	}
}

// fixed returns an AuthFunc that authenticates as name, or fails with err.
func fixed(name string, err error) auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		if err != nil {
			return nil, err
		}
		return auth.NewContext(ctx, &auth.Principal{Name: name}), nil
	}
}

func TestChain(t *testing.T) {
	t.Parallel()
	unauth := func(msg string) auth.AuthFunc { return fixed("", status.Error(codes.Unauthenticated, msg)) }
	noPrincipal := func(ctx context.Context) (context.Context, error) { return ctx, nil }
	nilContext := func(context.Context) (context.Context, error) { return nil, nil }
	called := false
	mustNotRun := func(context.Context) (context.Context, error) { called = true; return nil, nil }
	tests := []struct {
		name     string
		fns      []auth.AuthFunc
		wantName string     // the principal, if authenticated
		code     codes.Code // else the error's code
		msg      []string
	}{
		{"first wins", []auth.AuthFunc{fixed("mtls", nil), fixed("bearer", nil)}, "mtls", 0, nil},
		{"falls through", []auth.AuthFunc{unauth("no cert"), fixed("bearer", nil)}, "bearer", 0, nil},
		{"no principal falls through", []auth.AuthFunc{noPrincipal, nilContext, fixed("last", nil)}, "last", 0, nil},
		{"all unauthenticated", []auth.AuthFunc{unauth("no cert"), unauth("no token")}, "", codes.Unauthenticated, []string{"no cert; no token"}},
		{"none yields a principal", []auth.AuthFunc{noPrincipal}, "", codes.Unauthenticated, []string{"authenticator 0 returned no principal"}},
		{"empty chain", nil, "", codes.Unauthenticated, []string{"no authenticators"}},
		{"denied stops", []auth.AuthFunc{fixed("", status.Error(codes.PermissionDenied, "revoked")), mustNotRun}, "", codes.PermissionDenied, []string{"revoked"}},
		{"internal stops", []auth.AuthFunc{unauth("x"), fixed("", status.Error(codes.Internal, "boom")), mustNotRun}, "", codes.Internal, []string{"boom"}},
	}
	for _, tc := range tests {
		ctx, err := auth.Chain(tc.fns...)(context.Background())
		if tc.wantName != "" {
			if err != nil {
				t.Errorf("%s: err = %v", tc.name, err)
				continue
			}
			if got := principalOf(t, ctx).Name; got != tc.wantName {
				t.Errorf("%s: principal %q, want %q", tc.name, got, tc.wantName)
			}
			continue
		}
		wantCode(t, err, tc.code, tc.msg...)
	}
	if called {
		t.Error("the chain went on after an error other than Unauthenticated")
	}
	// A non-status error stops the chain too, unchanged.
	if _, err := auth.Chain(fixed("", errNotStatus), mustNotRun)(context.Background()); err != errNotStatus || called {
		t.Errorf("plain error: err = %v, went on: %v", err, called)
	}
}

// TestChainBearer chains two real AuthFuncs: mTLS (no peer here) and
// bearer.
func TestChainBearer(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testTokens())
	fn := auth.Chain(auth.MTLSAuth(auth.CertMapping(s)), auth.BearerAuth(s))
	ctx, err := fn(withBearer("bearer " + tokenA))
	if err != nil {
		t.Fatal(err)
	}
	if p := principalOf(t, ctx); p.Name != "svc-a" {
		t.Errorf("principal %q, want svc-a", p.Name)
	}
	_, err = fn(context.Background())
	wantCode(t, err, codes.Unauthenticated, "no client certificate", "no credentials: send authorization: bearer TOKEN")
	_, err = fn(withBearer("bearer " + tokenOld))
	wantCode(t, err, codes.Unauthenticated, "expired")
}

package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// AuthFunc authenticates a call from its context: it returns a child
// context that carries the caller's [Principal] (see [NewContext]), or a
// gRPC status error, Unauthenticated when the caller is not proven. It is
// the go-grpc-middleware v2 auth.AuthFunc, so it plugs into that package's
// StreamServerInterceptor and UnaryServerInterceptor.
//
// Those interceptors run the AuthFunc once, when a stream starts; the
// server's Authorizer enforces the principal's Expires during the stream.
type AuthFunc = grpcauth.AuthFunc

// BearerAuth returns an [AuthFunc] that authenticates the metadata
// "authorization: bearer TOKEN" against store. A known, unexpired token
// yields a context with a copy of its principal. A missing header, another
// scheme, an empty or unknown token, or expired credentials give
// Unauthenticated with a message that says which, and never repeats the
// token.
//
// The store is consulted on every call, so a reload applies to the next
// stream.
func BearerAuth(store *TokenStore) AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		token, err := grpcauth.AuthFromMD(ctx, "bearer")
		if err != nil {
			if len(metadata.ValueFromIncomingContext(ctx, "authorization")) == 0 {
				return nil, status.Error(codes.Unauthenticated, noCredentials)
			}
			return nil, status.Error(codes.Unauthenticated, `the authorization metadata is not "bearer TOKEN"`)
		}
		token = strings.TrimSpace(token)
		if token == "" {
			return nil, status.Error(codes.Unauthenticated, "empty bearer token: send authorization: bearer TOKEN")
		}
		p, ok := store.Lookup(token)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "unknown bearer token")
		}
		if p.Expired(time.Now()) {
			return nil, expiredError(p)
		}
		return NewContext(ctx, p), nil
	}
}

// Chain returns an [AuthFunc] that tries fns in order and returns the
// context of the first one that authenticates, that is, returns no error
// and a context with a [Principal]; put the strongest first, for example
//
//	auth.Chain(auth.MTLSAuth(auth.CertMapping(store)), auth.BearerAuth(store))
//
// An Unauthenticated error means "not this way" and moves on to the next
// function, as does a nil error without a principal. Any other error (for
// example PermissionDenied) stops the chain and is returned as is. If no
// function authenticates, the result is Unauthenticated with each
// function's reason, joined by "; ".
func Chain(fns ...AuthFunc) AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		reasons := make([]string, 0, len(fns))
		for i, fn := range fns {
			next, err := fn(ctx)
			if err == nil {
				if _, ok := fromNullableContext(next); ok {
					return next, nil
				}
				reasons = append(reasons, fmt.Sprintf("authenticator %d returned no principal", i))
				continue
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.Unauthenticated {
				return nil, err
			}
			reasons = append(reasons, st.Message())
		}
		if len(reasons) == 0 {
			return nil, status.Error(codes.Unauthenticated, "no authenticators configured")
		}
		return nil, status.Error(codes.Unauthenticated, strings.Join(reasons, "; "))
	}
}

// fromNullableContext is [FromContext] that tolerates a nil ctx, which a
// faulty AuthFunc might return with a nil error.
func fromNullableContext(ctx context.Context) (*Principal, bool) {
	if ctx == nil {
		return nil, false
	}
	return FromContext(ctx)
}

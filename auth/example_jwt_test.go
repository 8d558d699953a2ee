package auth_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/broker"
)

// jwtClaims are the claims of the example's tokens: the registered ones
// (sub, exp, iss, ...) and an OAuth-style space-separated scope.
type jwtClaims struct {
	Scope string `json:"scope"`
	jwt.RegisteredClaims
}

// jwtAuth returns an AuthFunc that accepts "authorization: bearer JWT"
// where the JWT is HS256-signed with key, issued by "tether-example" and
// has an exp. Its sub names the principal, its exp is the principal's
// Expires, and its scope grants the permissions (see scopePerms).
func jwtAuth(key []byte) auth.AuthFunc {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // refuses "none" and key confusion
		jwt.WithIssuer("tether-example"),
		jwt.WithExpirationRequired(),
	)
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	return func(ctx context.Context) (context.Context, error) {
		raw, err := grpcauth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, "no credentials: send authorization: bearer JWT")
		}
		var c jwtClaims
		if _, err := parser.ParseWithClaims(raw, &c, keyFunc); err != nil {
			// jwt's errors say what failed, never the token or the key.
			return nil, status.Errorf(codes.Unauthenticated, "invalid JWT: %v", err)
		}
		if c.Subject == "" {
			return nil, status.Error(codes.Unauthenticated, "invalid JWT: no sub")
		}
		p := &auth.Principal{Name: c.Subject, Perms: scopePerms(c.Scope), Expires: c.ExpiresAt.Time}
		return auth.NewContext(ctx, p), nil
	}
}

// scopePerms maps scopes to permissions: "connect", "admin",
// "publish_direct", "publish:PREFIX" and "subscribe:PREFIX". Unknown
// scopes grant nothing.
func scopePerms(scope string) auth.Permissions {
	var perms auth.Permissions
	for _, s := range strings.Fields(scope) {
		switch kind, prefix, _ := strings.Cut(s, ":"); {
		case s == "connect":
			perms.Connect = true
		case s == "admin":
			perms.Admin = true
		case s == "publish_direct":
			perms.PublishDirect = true
		case kind == "publish" && prefix != "":
			perms.Publish = append(perms.Publish, prefix)
		case kind == "subscribe" && prefix != "":
			perms.Subscribe = append(perms.Subscribe, prefix)
		}
	}
	return perms
}

// An application's own AuthFunc: an HS256 JWT whose claims become the
// Principal (sub the name, scope the permissions, exp the expiry), which
// the Authorizer then checks.
func Example_jwt() {
	key := []byte("example key: use 32 random bytes")
	sign := func(key []byte, sub, scope string, exp time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
			Scope: scope,
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer:    "tether-example",
				Subject:   sub,
				ExpiresAt: jwt.NewNumericDate(exp),
			},
		})
		s, err := tok.SignedString(key)
		if err != nil {
			panic(err)
		}
		return s
	}
	// call is the context of an incoming call with the token.
	call := func(token string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
	}
	authenticate := jwtAuth(key)
	exp := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

	ctx, err := authenticate(call(sign(key, "svc-a", "connect publish:fleet. subscribe:svc.a.", exp)))
	if err != nil {
		panic(err)
	}
	p, _ := auth.FromContext(ctx)
	fmt.Println(p.Name, "expires", p.Expires.UTC().Format(time.RFC3339))
	fmt.Printf("%+v\n", p.Perms)

	var authz auth.Authorizer
	fmt.Println("connect:", authz.Connect(ctx))
	fmt.Println("publish fleet.x:", authz.Publish(ctx, broker.Topic("fleet.x")))
	fmt.Println("admin:", authz.Admin(ctx))

	_, err = authenticate(call(sign(key, "svc-a", "connect", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))))
	fmt.Println("expired:", err)
	_, err = authenticate(call(sign([]byte("some other key"), "svc-a", "admin", exp)))
	fmt.Println("forged:", err)

	// Output:
	// svc-a expires 2100-01-01T00:00:00Z
	// {Connect:true Admin:false AdminRead:false Publish:[fleet.] PublishDirect:false Subscribe:[svc.a.]}
	// connect: <nil>
	// publish fleet.x: <nil>
	// admin: rpc error: code = PermissionDenied desc = principal "svc-a" lacks permission "admin"
	// expired: rpc error: code = Unauthenticated desc = invalid JWT: token has invalid claims: token is expired
	// forged: rpc error: code = Unauthenticated desc = invalid JWT: token signature is invalid: signature is invalid
}

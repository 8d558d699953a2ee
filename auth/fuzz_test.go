package auth

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// FuzzParseTokens feeds arbitrary bytes to the tokens-file parser: it must
// never panic, and what it accepts must be consistent: every principal
// named, unique, with a 32-byte hash when it has a token.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(`{"principals":[{"name":"a","token_sha256":"` + HashToken("t") + `","connect":true,"publish":["fleet."]}]}`))
	f.Add([]byte(`{"principals":[{"name":"a"},{"name":"a"}]}`))
	f.Add([]byte(`{"principals":[{"name":"a","expires":"2030-01-01T00:00:00Z","subscribe":["*"]}]}`))
	f.Add([]byte(`{"principals":[{"name":"a","token_sha256":"zz"}]} trailing`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := parseTokens(data)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for i, p := range set.principals {
			if p.Name == "" || names[p.Name] {
				t.Fatalf("accepted a principal with an empty or repeated name %q", p.Name)
			}
			names[p.Name] = true
			if set.byName[p.Name] != p {
				t.Fatalf("principal %q is not indexed by name", p.Name)
			}
			_ = set.hashes[i]
		}
	})
}

// FuzzBearerToken feeds arbitrary authorization headers to BearerAuth: it
// must never panic, must accept only the one known token, and must never
// echo the presented token in its error.
func FuzzBearerToken(f *testing.F) {
	const known = "0123456789abcdef0123456789abcdef"
	set, err := parseTokens([]byte(`{"principals":[{"name":"svc","token_sha256":"` + HashToken(known) + `","connect":true}]}`))
	if err != nil {
		f.Fatal(err)
	}
	store := &TokenStore{}
	store.tokens.Store(set)
	authFn := BearerAuth(store)
	f.Add("Bearer " + known)
	f.Add("bearer " + known)
	f.Add("Bearer ")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer " + strings.Repeat("x", 5000))
	f.Fuzz(func(t *testing.T, header string) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", header))
		out, err := authFn(ctx)
		if err == nil {
			if p, ok := FromContext(out); !ok || p.Name != "svc" {
				t.Fatalf("accepted %q without the principal", header)
			}
			return
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("error code %v for %q", status.Code(err), header)
		}
		if tok, ok := strings.CutPrefix(header, "Bearer "); ok && len(tok) >= 8 && strings.Contains(err.Error(), tok) {
			t.Fatalf("the error echoes the token: %v", err)
		}
	})
}

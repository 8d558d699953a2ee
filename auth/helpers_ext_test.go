package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/auth"
)

// defaultTestTimeout bounds waits for things that must happen.
const defaultTestTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Tokens of the test token file (testTokens), and their owners.
const (
	tokenA     = "token-of-svc-a-0123456789abcdef"
	tokenOps   = "token-of-ops-0123456789abcdef"
	tokenOld   = "token-of-old-0123456789abcdef"
	tokenLater = "token-of-later-0123456789abcdef"
)

// testTokens returns a valid token file: svc-a (connect, publish fleet.,
// direct, subscribe svc.a.), ops (admin), old (expired), cert-only (no
// token, connect, subscribe *) and spiffe://tether/svc-b (no token).
func testTokens() string {
	return `{"principals": [
  {"name": "svc-a", "token_sha256": "` + auth.HashToken(tokenA) + `", "connect": true,
   "publish": ["fleet."], "publish_direct": true, "subscribe": ["svc.a."]},
  {"name": "ops", "token_sha256": "` + strings.ToUpper(auth.HashToken(tokenOps)) + `", "admin": true},
  {"name": "old", "token_sha256": "` + auth.HashToken(tokenOld) + `", "connect": true, "expires": "2001-02-03T04:05:06Z"},
  {"name": "cert-only", "connect": true, "subscribe": ["*"]},
  {"name": "spiffe://tether/svc-b", "connect": true}
]}`
}

// writeFile writes data to a new file in a test directory, or over path
// if one is given, and returns the path.
func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "tokens.json")
	}
	// Write and rename, as an operator's tooling should, so that a
	// concurrent reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustLoad loads a token file with data.
func mustLoad(t *testing.T, data string) *auth.TokenStore {
	t.Helper()
	s, err := auth.LoadTokens(writeFile(t, "", data))
	if err != nil {
		t.Fatalf("LoadTokens: %v", err)
	}
	return s
}

// withBearer returns an incoming context with an authorization header.
func withBearer(value string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", value))
}

// wantCode fails unless err is a status error with code and a message that
// contains each of parts.
func wantCode(t *testing.T, err error, code codes.Code, parts ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("err = %v (%T), want a status error with code %v", err, err, code)
	}
	if st.Code() != code {
		t.Fatalf("code = %v (%q), want %v", st.Code(), st.Message(), code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("message %q does not contain %q", st.Message(), p)
		}
	}
}

// wantNoSecret fails if err's text contains one of the secrets.
func wantNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q reveals %q", err, s)
		}
	}
}

// principalOf returns the principal of ctx or fails.
func principalOf(t *testing.T, ctx context.Context) *auth.Principal {
	t.Helper()
	if ctx == nil {
		t.Fatal("nil context")
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		t.Fatal("no principal in the context")
	}
	return p
}

// errNotStatus is a plain error for authenticators under test.
var errNotStatus = errors.New("plain failure")

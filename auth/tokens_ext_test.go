package auth_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/auth"
)

func TestHashToken(t *testing.T) {
	t.Parallel()
	// printf %s test | sha256sum
	const want = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	if got := auth.HashToken("test"); got != want {
		t.Errorf("HashToken(test) = %s, want %s", got, want)
	}
}

func TestLoadTokensValid(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testTokens())
	if s.Len() != 5 {
		t.Errorf("Len = %d, want 5", s.Len())
	}
	p, ok := s.Lookup(tokenA)
	if !ok {
		t.Fatal("Lookup(tokenA) found nothing")
	}
	want := auth.Permissions{Connect: true, Publish: []string{"fleet."}, PublishDirect: true, Subscribe: []string{"svc.a."}}
	if p.Name != "svc-a" || !p.Expires.IsZero() || !samePerms(p.Perms, want) {
		t.Errorf("Lookup(tokenA) = %+v, want svc-a with %+v", p, want)
	}
	// The hash of ops is upper case in the file.
	if p, ok := s.Lookup(tokenOps); !ok || p.Name != "ops" || !p.Perms.Admin || p.Perms.Connect {
		t.Errorf("Lookup(tokenOps) = %+v, %v", p, ok)
	}
	old, ok := s.Lookup(tokenOld)
	if !ok || !old.Expires.Equal(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)) {
		t.Errorf("Lookup(tokenOld) = %+v, %v; want expiry 2001-02-03T04:05:06Z", old, ok)
	}
	if p, ok := s.LookupName("cert-only"); !ok || !p.Perms.Connect {
		t.Errorf("LookupName(cert-only) = %+v, %v", p, ok)
	}
	if _, ok := s.LookupName("nobody"); ok {
		t.Error("LookupName(nobody) found a principal")
	}
}

func TestLookupWrongToken(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testTokens())
	for _, tok := range []string{"", "wrong", tokenA + "x", tokenA[:len(tokenA)-1], strings.ToUpper(tokenA), auth.HashToken(tokenA)} {
		if p, ok := s.Lookup(tok); ok {
			t.Errorf("Lookup(%q) = %q, want nothing", tok, p.Name)
		}
	}
	// The principal without a token is not found by the empty token's hash
	// or by a zero hash.
	var zero [sha256.Size]byte
	if _, ok := s.Lookup(string(zero[:])); ok {
		t.Error("a zero token found a principal")
	}
}

func TestLookupReturnsCopies(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testTokens())
	p, _ := s.Lookup(tokenA)
	p.Name = "mallory"
	p.Perms.Publish[0] = "*"
	p.Perms.Admin = true
	again, _ := s.Lookup(tokenA)
	if again.Name != "svc-a" || again.Perms.Publish[0] != "fleet." || again.Perms.Admin {
		t.Errorf("changing a looked-up principal changed the store: %+v", again)
	}
}

func TestLoadTokensInvalid(t *testing.T) {
	t.Parallel()
	hashA := auth.HashToken(tokenA)
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"malformed JSON", `{"principals": [`, []string{"invalid JSON"}},
		{"not an object", `[]`, []string{"invalid JSON"}},
		{"trailing data", `{"principals": []} {}`, []string{"after the top-level object"}},
		{"unknown field", `{"principals": [{"name": "a", "publsh": ["x."]}]}`, []string{"invalid JSON", "publsh"}},
		{"wrong type", `{"principals": [{"name": "a", "connect": "yes"}]}`, []string{"invalid JSON"}},
		{"hash too short", `{"principals": [{"name": "a", "token_sha256": "abcd"}]}`, []string{`principals[0] ("a")`, "64 hex digits"}},
		{"hash too long", `{"principals": [{"name": "a", "token_sha256": "` + hashA + `00"}]}`, []string{"64 hex digits"}},
		{"hash not hex", `{"principals": [{"name": "a", "token_sha256": "` + strings.Repeat("zz", 32) + `"}]}`, []string{"64 hex digits"}},
		{"no name", `{"principals": [{"connect": true}]}`, []string{`principals[0] ("")`, "name must not be empty"}},
		{"duplicate names", `{"principals": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}`, []string{`principals[2] ("a")`, "duplicate name"}},
		{"duplicate tokens", `{"principals": [{"name": "a", "token_sha256": "` + hashA + `"}, {"name": "b", "token_sha256": "` + strings.ToUpper(hashA) + `"}]}`, []string{`principals[1] ("b")`, `token of "a"`}},
		{"bad expires", `{"principals": [{"name": "a", "expires": "tomorrow"}]}`, []string{"expires", "RFC 3339"}},
		{"empty prefix", `{"principals": [{"name": "a", "subscribe": [""]}]}`, []string{"subscribe", "must not be empty"}},
		{"glob", `{"principals": [{"name": "a", "publish": ["fleet.*"]}]}`, []string{"publish", `"fleet.*"`, `write "fleet."`}},
		{"inner glob", `{"principals": [{"name": "a", "publish": ["a*b*"]}]}`, []string{"no globs"}},
		{"several errors", `{"principals": [{"name": ""}, {"name": "b", "token_sha256": "x"}]}`, []string{"principals[0]", "principals[1]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "", tc.data)
			s, err := auth.LoadTokens(path)
			if err == nil {
				t.Fatalf("LoadTokens = %v, nil; want an error", s)
			}
			for _, w := range append(tc.want, path, "tether/auth: ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadTokensMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.json")
	if _, err := auth.LoadTokens(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadTokens(absent) = %v, want an error naming the file", err)
	}
}

func TestLoadTokensEmpty(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, `{}`)
	if s.Len() != 0 {
		t.Errorf("Len = %d", s.Len())
	}
	if _, ok := s.Lookup(""); ok {
		t.Error("Lookup in an empty store found a principal")
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testTokens())
	before, _ := s.Lookup(tokenA)

	// A good file replaces the principals.
	writeFile(t, s.Path(), `{"principals": [{"name": "svc-a", "token_sha256": "`+auth.HashToken(tokenLater)+`", "publish": ["*"]}]}`)
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload(good) = %v", err)
	}
	if _, ok := s.Lookup(tokenA); ok {
		t.Error("the old token still works after the reload")
	}
	after, ok := s.Lookup(tokenLater)
	if !ok || s.Len() != 1 || !after.Perms.CanPublishTopic("x") || after.Perms.Connect {
		t.Errorf("after reload: Lookup(tokenLater) = %+v, %v; Len %d", after, ok, s.Len())
	}
	// The principal from before the reload is unchanged.
	if !before.Perms.Connect || before.Perms.CanPublishTopic("x") {
		t.Errorf("a reload changed a principal already handed out: %+v", before)
	}

	// A bad file keeps the old principals and reports the error.
	writeFile(t, s.Path(), `{"principals": [{"name": "svc-a", "token_sha256": "short"}]}`)
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("Reload(bad) = %v, want the hash error", err)
	}
	if p, ok := s.Lookup(tokenLater); !ok || p.Name != "svc-a" || s.Len() != 1 {
		t.Errorf("after a failed reload: Lookup(tokenLater) = %+v, %v", p, ok)
	}
	// A missing file too.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload(missing file) = nil")
	}
	if _, ok := s.Lookup(tokenLater); !ok {
		t.Error("a failed reload of a missing file dropped the principals")
	}
}

// TestReloadConcurrent runs lookups during reloads; the race detector
// checks the swap, and each lookup sees one whole file or the other.
func TestReloadConcurrent(t *testing.T) {
	t.Parallel()
	fileA := `{"principals": [{"name": "a", "token_sha256": "` + auth.HashToken(tokenA) + `", "connect": true}]}`
	fileB := `{"principals": [{"name": "b", "token_sha256": "` + auth.HashToken(tokenA) + `", "admin": true}]}`
	s := mustLoad(t, fileA)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, ok := s.Lookup(tokenA)
				if !ok || (p.Name == "a") != p.Perms.Connect || (p.Name == "b") != p.Perms.Admin {
					t.Errorf("Lookup during reload = %+v, %v", p, ok)
					return
				}
			}
		})
	}
	for i := range 50 {
		data := fileA
		if i%2 == 0 {
			data = fileB
		}
		writeFile(t, s.Path(), data)
		if err := s.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

// samePerms compares permissions field by field.
func samePerms(a, b auth.Permissions) bool {
	return a.Connect == b.Connect && a.Admin == b.Admin && a.PublishDirect == b.PublishDirect &&
		strings.Join(a.Publish, "\x00") == strings.Join(b.Publish, "\x00") &&
		strings.Join(a.Subscribe, "\x00") == strings.Join(b.Subscribe, "\x00")
}

// admin_read is read from the tokens file into Permissions.AdminRead.
func TestTokensAdminRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	doc := `{"principals":[{"name":"reader","token_sha256":"` + auth.HashToken("r") + `","admin_read":true}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := auth.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := store.Lookup("r")
	if !ok || !p.Perms.AdminRead || p.Perms.Admin {
		t.Fatalf("reader = %+v, %v; want admin_read only", p, ok)
	}
}

// rate_exempt is read from the tokens file into Principal.RateExempt, which
// auth.RateExempt reports for a call's context; it is off by default.
func TestTokensRateExempt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	doc := `{"principals":[
		{"name":"backend","token_sha256":"` + auth.HashToken("b") + `","publish_direct":true,"rate_exempt":true},
		{"name":"device","token_sha256":"` + auth.HashToken("d") + `","connect":true}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := auth.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]bool{"b": true, "d": false} {
		p, ok := store.Lookup(token)
		if !ok || p.RateExempt != want {
			t.Fatalf("principal of %q = %+v, %v; want rate_exempt %v", token, p, ok, want)
		}
		if got := auth.RateExempt(auth.NewContext(context.Background(), p)); got != want {
			t.Errorf("RateExempt(%s) = %v, want %v", p.Name, got, want)
		}
	}
	if auth.RateExempt(context.Background()) {
		t.Error("RateExempt of a context without a principal = true")
	}
}

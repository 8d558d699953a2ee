package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HashToken returns the lower-case hex SHA-256 of token: the token_sha256
// value that the token file stores for it. The shell equivalent is
//
//	printf %s "$TOKEN" | sha256sum
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenStore holds the principals of a token file (see the package
// documentation for the format) and finds them by bearer token or by name.
//
// Lookups and [TokenStore.Reload] are safe for concurrent use: a reload
// swaps the whole set at once, so a lookup sees either the old file or the
// new one, never a mix.
type TokenStore struct {
	path   string
	mu     sync.Mutex // serializes Reload, so the last file read wins
	tokens atomic.Pointer[tokenSet]
}

// tokenSet is one parsed token file. It is never modified once stored.
type tokenSet struct {
	hashes     [][sha256.Size]byte // hashes[i] is the token hash of principals[i], if hasToken[i]
	hasToken   []bool
	principals []*Principal
	byName     map[string]*Principal
}

// LoadTokens reads the token file at path and returns a store of its
// principals. It fails, naming the file and the entry, if the file cannot
// be read or is not valid (see the package documentation).
func LoadTokens(path string) (*TokenStore, error) {
	s := &TokenStore{path: path}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the token file and, if it is valid, replaces the
// principals in one atomic step. If it is not, the store keeps the
// principals it had and Reload returns the error.
//
// Streams that authenticated before the reload are not affected: they
// keep the Principal they were given, even if the new file drops or
// changes it. New streams see the new file.
func (s *TokenStore) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("tether/auth: token file: %w", err)
	}
	set, err := parseTokens(data)
	if err != nil {
		return fmt.Errorf("tether/auth: token file %s: %w", s.path, err)
	}
	s.tokens.Store(set)
	return nil
}

// Path returns the path of the token file.
func (s *TokenStore) Path() string { return s.path }

// Len returns the number of principals in the store.
func (s *TokenStore) Len() int { return len(s.tokens.Load().principals) }

// Lookup returns a copy of the principal whose token_sha256 is the hash of
// token, if there is one.
//
// The comparison is constant-time and safe against timing attacks: the
// presented token is hashed first, so only fixed-length 32-byte digests
// are compared and neither token's length shows; every stored hash is
// compared with [subtle.ConstantTimeCompare] and the match is picked with
// [subtle.ConstantTimeSelect], with no early exit, so the time taken
// depends only on the number of principals, not on which one matched or
// on how many bytes agreed. Even a leak would only reveal bytes of a
// SHA-256 digest, which does not help to find a token that hashes to it.
func (s *TokenStore) Lookup(token string) (*Principal, bool) {
	sum := sha256.Sum256([]byte(token))
	set := s.tokens.Load()
	found := -1
	for i := range set.hashes {
		eq := subtle.ConstantTimeCompare(set.hashes[i][:], sum[:])
		if !set.hasToken[i] {
			eq = 0
		}
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil, false
	}
	return set.principals[found].clone(), true
}

// LookupName returns a copy of the principal called name, if there is
// one. It is meant for identities proven by other means, such as a client
// certificate (see [CertMapping]).
func (s *TokenStore) LookupName(name string) (*Principal, bool) {
	p, ok := s.tokens.Load().byName[name]
	if !ok {
		return nil, false
	}
	return p.clone(), true
}

// tokenFile is the JSON document of a token file.
type tokenFile struct {
	Principals []tokenEntry `json:"principals"`
}

// tokenEntry is one principal of a token file.
type tokenEntry struct {
	Name          string   `json:"name"`
	TokenSHA256   string   `json:"token_sha256"`
	Connect       bool     `json:"connect"`
	Publish       []string `json:"publish"`
	PublishDirect bool     `json:"publish_direct"`
	Subscribe     []string `json:"subscribe"`
	Admin         bool     `json:"admin"`
	AdminRead     bool     `json:"admin_read"`
	RateExempt    bool     `json:"rate_exempt"`
	Expires       string   `json:"expires"`
}

// parseTokens parses and validates a token file.
func parseTokens(data []byte) (*tokenSet, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f tokenFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the top-level object")
	}
	set := &tokenSet{byName: make(map[string]*Principal, len(f.Principals))}
	owner := make(map[[sha256.Size]byte]string)
	var errs []error
	for i, e := range f.Principals {
		p, hash, err := e.principal()
		if err == nil {
			if _, dup := set.byName[p.Name]; dup {
				err = errors.New("duplicate name")
			} else if other, dup := owner[hash]; dup && e.TokenSHA256 != "" {
				err = fmt.Errorf("token_sha256 is also the token of %q", other)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("principals[%d] (%q): %w", i, e.Name, err))
			continue
		}
		set.principals = append(set.principals, p)
		set.hashes = append(set.hashes, hash)
		set.hasToken = append(set.hasToken, e.TokenSHA256 != "")
		set.byName[p.Name] = p
		if e.TokenSHA256 != "" {
			owner[hash] = p.Name
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// principal validates e and returns its principal and token hash (zero
// when it has no token).
func (e tokenEntry) principal() (*Principal, [sha256.Size]byte, error) {
	var hash [sha256.Size]byte
	if e.Name == "" {
		return nil, hash, errors.New("name must not be empty")
	}
	if e.TokenSHA256 != "" {
		b, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, hash, fmt.Errorf("token_sha256 must be %d hex digits (the SHA-256 of the token, not the token)", 2*sha256.Size)
		}
		copy(hash[:], b)
	}
	p := &Principal{Name: e.Name, RateExempt: e.RateExempt, Perms: Permissions{
		Connect:       e.Connect,
		Admin:         e.Admin,
		AdminRead:     e.AdminRead,
		Publish:       e.Publish,
		PublishDirect: e.PublishDirect,
		Subscribe:     e.Subscribe,
	}}
	if err := checkPrefixes("publish", e.Publish); err != nil {
		return nil, hash, err
	}
	if err := checkPrefixes("subscribe", e.Subscribe); err != nil {
		return nil, hash, err
	}
	if e.Expires != "" {
		t, err := time.Parse(time.RFC3339, e.Expires)
		if err != nil {
			return nil, hash, fmt.Errorf("expires: %q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", e.Expires)
		}
		p.Expires = t
	}
	return p, hash, nil
}

// checkPrefixes rejects empty prefixes and globs other than a lone "*".
func checkPrefixes(field string, prefixes []string) error {
	for _, pre := range prefixes {
		switch {
		case pre == "":
			return fmt.Errorf("%s: a prefix must not be empty (use \"*\" for every topic)", field)
		case pre != "*" && strings.Contains(pre, "*"):
			err := fmt.Errorf("%s: %q: there are no globs, only prefixes and a lone \"*\"", field, pre)
			if trimmed := strings.TrimRight(pre, "*"); !strings.Contains(trimmed, "*") {
				err = fmt.Errorf("%w (write %q)", err, trimmed)
			}
			return err
		}
	}
	return nil
}

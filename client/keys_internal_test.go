package client

import (
	"strings"
	"testing"
)

// Generated idempotency keys never repeat, within a session or across
// sessions, and stay short.
func TestKeyGen(t *testing.T) {
	t.Parallel()
	var a, b keyGen
	seen := map[string]bool{}
	for range 1000 {
		for _, k := range []string{a.next(), b.next()} {
			if seen[k] {
				t.Fatalf("key %q repeated", k)
			}
			seen[k] = true
			if len(k) > 40 {
				t.Fatalf("key %q is %d bytes", k, len(k))
			}
		}
	}
	pa, _, _ := strings.Cut(a.next(), ".")
	pb, _, _ := strings.Cut(b.next(), ".")
	if pa == pb || len(pa) < 22 {
		t.Fatalf("prefixes %q and %q: want two distinct 128-bit random prefixes", pa, pb)
	}
}

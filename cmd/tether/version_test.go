package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	out := mustTether(t, "", "version")
	if e := events(t, out); len(e) != 1 || e[0].str("go") != runtime.Version() || e[0].str("version") == "" || e[0].str("commit") == "" {
		t.Errorf("version printed %q; want one JSON line with version, commit and go %s", out, runtime.Version())
	}
	if out := mustTether(t, "", "--version"); !strings.HasPrefix(out, "tether ") || !strings.HasSuffix(out, runtime.Version()+")\n") {
		t.Errorf("--version printed %q", out)
	}
}

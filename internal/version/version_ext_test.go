package version_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/version"
)

func TestGet(t *testing.T) {
	t.Parallel()
	v := version.Get()
	if v.Go != runtime.Version() || v.Version == "" || v.Commit == "" {
		t.Errorf("Get() = %+v; want the Go version %s and a version and commit", v, runtime.Version())
	}
	if s := v.String(); !strings.HasPrefix(s, v.Version+" (commit "+v.Commit) || !strings.HasSuffix(s, runtime.Version()+")") {
		t.Errorf("String() = %q", s)
	}
}

func ExampleInfo_String() {
	v := version.Info{Version: "v1.2.0", Commit: "4f0c2a9", Modified: true, Go: "go1.26.0"}
	fmt.Println(v.String())
	// Output: v1.2.0 (commit 4f0c2a9, modified, go1.26.0)
}

// Package version reports the version of the running binary from its
// build information: the module version (v1.2.3 when built by
// "go install …@v1.2.3", "(devel)" from a checkout), the VCS commit when
// the build recorded one, and the Go version.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info is a binary's version information.
type Info struct {
	// Version is the main module's version, "(devel)" for a build from
	// a checkout.
	Version string `json:"version"`
	// Commit is the VCS revision, "unknown" when the build did not
	// record one (go run, -buildvcs=false, no git).
	Commit string `json:"commit"`
	// Modified reports uncommitted changes in the build's checkout.
	Modified bool `json:"modified,omitempty"`
	// Go is the Go version the binary was built with.
	Go string `json:"go"`
}

// Get returns the running binary's version information.
func Get() Info {
	info := Info{Version: "(devel)", Commit: "unknown", Go: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.Go = bi.GoVersion
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String formats i for a --version line: "v1.2.3 (commit 0123abc, go1.26.0)".
func (i Info) String() string {
	parts := []string{"commit " + i.Commit}
	if i.Modified {
		parts = append(parts, "modified")
	}
	parts = append(parts, i.Go)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}

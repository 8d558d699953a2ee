package main

import (
	"github.com/spf13/cobra"

	"github.com/tetherhq/tether/internal/version"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version as a JSON line",
		Long: `version prints the module version ("(devel)" for a build from a checkout),
the VCS commit ("unknown" when the build recorded none) and the Go version
of this binary as one JSON line:

  {"version":"v1.2.0","commit":"4f0c2a9…","go":"go1.26.0"}

tether --version prints the same as text.`,
		Example: `  tether version
  tether version | jq -r .commit
  tether --version`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			a.ran = true
			out := newLines(a.stdout)
			out.write(version.Get())
			return out.failure()
		},
	}
}

// Command tether-bench is tether's load driver: it runs each scenario
// against tether and its raw grpc-go twin, each server in a process of its
// own, and prints medians, min–max and ratios. See BENCHMARKS.md.
//
//	cd bench && go run ./cmd/tether-bench push
//	cd bench && go run ./cmd/tether-bench latency --svg results/latency.svg
package main

import (
	"os"

	"github.com/tetherhq/tether/bench/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}

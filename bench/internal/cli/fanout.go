package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
)

func init() {
	report.Labels[scenario.MetricLost] = "lost deliveries"
}

// runFanout is "tether-bench fanout": publish to a topic with N
// subscribers.
func runFanout(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("fanout", stderr)
	_ = fs.Set("systems", "tether,raw,centrifuge")
	subscribers := fs.String("subscribers", "1000,10000", "subscriber counts, each subscriber its own session on its own connection, all in one driver process (keep each below ~19,000: 20,000 fds per process)")
	size := fs.Int("size", 64, "message size in bytes (at least 13: kind, seq, publish time)")
	deliveries := fs.Int("deliveries", 200000, "measured deliveries per case: publishes = deliveries ÷ subscribers (at least 10)")
	warmup := fs.Int("warmup-deliveries", 20000, "warm-up deliveries before measuring (publishes = this ÷ subscribers, at least 2)")
	inflight := fs.Int("inflight", 2, "publishes in flight: the next goes when one reached every subscriber")
	prof := fs.String("profile", "default", "liveness profile of both sides")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	ns, err := ints(*subscribers)
	if err != nil {
		return fmt.Errorf("--subscribers %w", err)
	}
	var jobs []job
	for _, n := range ns {
		if n > 19000 {
			return fmt.Errorf("--subscribers %d: one driver process holds at most ~19,000 connections (20,000 fds)", n)
		}
		count := max((*deliveries+n-1)/n, 10)
		jobs = append(jobs, job{spec: scenario.Spec{
			Scenario: "fanout", Case: fmt.Sprintf("fanout %d subscribers × %s", n, sizeLabel(*size)), Profile: *prof,
			Sessions: n, Size: max(*size, 13), Window: *inflight,
			WarmupCount: max(*warmup/n, 2), Count: count,
		}})
	}
	results, err := runJobs(context.Background(), c, systems, jobs, stderr)
	if err != nil {
		return err
	}
	return output(c, stdout, "fanout", args, systems, results,
		[]string{scenario.MetricRate, scenario.MetricP50, scenario.MetricP99, scenario.MetricP999, scenario.MetricCPUPerMsg, scenario.MetricLost}, nil)
}

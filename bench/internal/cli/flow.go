package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
)

// The flow-control scenarios of issue 15: relay, flow and sendwait.

func init() {
	for m, l := range map[string]string{
		scenario.MetricWall:       "wall s",
		scenario.MetricDelivered:  "delivered",
		scenario.MetricLostMsgs:   "lost",
		scenario.MetricDuplicated: "duplicated",
		scenario.MetricReordered:  "reordered",
		scenario.MetricCuts:       "streams cut",
		scenario.MetricGapsTold:   "reported lost",
		scenario.MetricSendFailed: "sends failed",
		scenario.MetricFreeRate:   "free rate msg/s",
		scenario.MetricProducer:   "producer msg/s (last third)",
		scenario.MetricConsumer:   "consumer msg/s (last third)",
		scenario.MetricRSSMax:     "server RSS max",
		scenario.MetricHeapMax:    "server heap+stack max",
		scenario.MetricRSSStart:   "server RSS after warm-up",
		scenario.MetricDrain:      "drain s",
	} {
		report.Labels[m] = l
	}
	report.Counts = append(report.Counts, scenario.MetricDelivered, scenario.MetricLostMsgs, scenario.MetricDuplicated,
		scenario.MetricReordered, scenario.MetricCuts, scenario.MetricGapsTold, scenario.MetricSendFailed)
	report.Rates = append(report.Rates, scenario.MetricFreeRate, scenario.MetricProducer, scenario.MetricConsumer)
	report.Bytes = append(report.Bytes, scenario.MetricRSSMax, scenario.MetricHeapMax, scenario.MetricRSSStart)
}

// brokerJobs returns one job per broker of the comma-separated list, made
// by mk; a NATS case runs on tether alone (no other system here has a
// shared broker).
func brokerJobs(brokers string, mk func(broker string) scenario.Spec) ([]job, error) {
	var jobs []job
	for _, b := range strings.Split(brokers, ",") {
		b = strings.TrimSpace(b)
		j := job{spec: mk(b)}
		switch b {
		case "memory":
		case "nats", "nats-core":
			j.only = []string{"tether"}
		default:
			return nil, fmt.Errorf("--brokers: unknown broker %q (memory, nats, nats-core)", b)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// runRelay is "tether-bench relay": the "Done when" figure of issue 15.
func runRelay(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("relay", stderr)
	count := fs.Int("count", 20000, "messages sent flat out from the producer session to the consumer's client id")
	size := fs.Int("size", 64, "message size in bytes (at least 9: kind and seq)")
	brokers := fs.String("brokers", "memory", "brokers, comma-separated: memory, nats, nats-core (NATS with logs on their node: --nats-durability node; tether only)")
	settle := fs.Duration("settle", 30*time.Second, "give up on the last messages after this long without one")
	prof := fs.String("profile", "default", "liveness profile of both sides")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	jobs, err := brokerJobs(*brokers, func(b string) scenario.Spec {
		return scenario.Spec{Scenario: "relay", Case: fmt.Sprintf("relay %d × %s, %s broker", *count, sizeLabel(*size), b), Profile: *prof,
			Sessions: 2, Size: max(*size, 9), Count: *count, Broker: b, Settle: *settle}
	})
	if err != nil {
		return err
	}
	results, err := runJobs(context.Background(), c, systems, jobs, stderr)
	if err != nil {
		return err
	}
	return output(c, stdout, "relay", args, systems, results,
		[]string{scenario.MetricWall, scenario.MetricRate, scenario.MetricCPUPerMsg, scenario.MetricLostMsgs, scenario.MetricDuplicated,
			scenario.MetricReordered, scenario.MetricCuts, scenario.MetricGapsTold, scenario.MetricSendFailed},
		func(w io.Writer) { notes(w, results) })
}

// runFlow is "tether-bench flow": a producer faster than its consumer.
func runFlow(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("flow", stderr)
	_ = fs.Set("runs", "1")
	consumers := fs.String("consumers", "keep,slow", "consumers: keep (reads flat out), slow (the free rate ÷ --slowdown)")
	slowdown := fs.Float64("slowdown", 2, "how many times slower than the free rate the slow consumer reads")
	duration := fs.Duration("duration", 30*time.Second, "measured window of each case")
	warmup := fs.Duration("warmup", 5*time.Second, "warm-up with the consumer reading flat out: its rate is the free rate")
	size := fs.Int("size", 64, "message size in bytes (at least 9: kind and seq)")
	brokers := fs.String("brokers", "memory,nats", "brokers, comma-separated: memory, nats, nats-core (NATS with logs on their node: --nats-durability node; tether only)")
	settle := fs.Duration("settle", 30*time.Second, "after the window, give up on the last messages after this long without one")
	prof := fs.String("profile", "default", "liveness profile of both sides")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	var jobs []job
	for _, k := range strings.Split(*consumers, ",") {
		k = strings.TrimSpace(k)
		label := map[string]string{"keep": "consumer keeps up", "slow": fmt.Sprintf("consumer %g× slower", *slowdown)}[k]
		if label == "" {
			return fmt.Errorf("--consumers: unknown consumer %q (keep, slow)", k)
		}
		js, err := brokerJobs(*brokers, func(b string) scenario.Spec {
			return scenario.Spec{Scenario: "flow", Case: fmt.Sprintf("%s, %s × %v, %s broker", label, sizeLabel(*size), *duration, b), Profile: *prof,
				Sessions: 2, Size: max(*size, 9), Consumer: k, Slowdown: *slowdown, Warmup: *warmup, Duration: *duration, Broker: b, Settle: *settle}
		})
		if err != nil {
			return err
		}
		jobs = append(jobs, js...)
	}
	results, err := runJobs(context.Background(), c, systems, jobs, stderr)
	if err != nil {
		return err
	}
	return output(c, stdout, "flow", args, systems, results,
		[]string{scenario.MetricDelivered, scenario.MetricLostMsgs, scenario.MetricDuplicated, scenario.MetricReordered,
			scenario.MetricCuts, scenario.MetricGapsTold, scenario.MetricSendFailed, scenario.MetricFreeRate,
			scenario.MetricProducer, scenario.MetricConsumer, scenario.MetricRSSStart, scenario.MetricRSSMax, scenario.MetricHeapMax, scenario.MetricDrain},
		func(w io.Writer) {
			series(w, results)
			notes(w, results)
		})
}

// runSendWait is "tether-bench sendwait": a low-rate acknowledged send
// against raw grpc-go's unary round trip.
func runSendWait(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("sendwait", stderr)
	size := fs.Int("size", 64, "message size in bytes")
	count := fs.Int("count", 1000, "measured sends per case")
	warmupCount := fs.Int("warmup-count", 100, "sends before measuring")
	interval := fs.Duration("interval", 5*time.Millisecond, "pause between sends (low rate: nothing else is pending)")
	prof := fs.String("profile", "default", "liveness profile of both sides")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	jobs := []job{{spec: scenario.Spec{
		Scenario: "sendwait", Case: fmt.Sprintf("acknowledged send %s, every %v", sizeLabel(*size), *interval), Profile: *prof,
		Sessions: 1, Size: *size, WarmupCount: *warmupCount, Count: *count, Interval: *interval,
	}}}
	results, err := runJobs(context.Background(), c, systems, jobs, stderr)
	if err != nil {
		return err
	}
	return output(c, stdout, "sendwait", args, systems, results,
		[]string{scenario.MetricP50, scenario.MetricP99, scenario.MetricP999, scenario.MetricCPUPerOp}, nil)
}

// series writes each flow result's per-second producer and consumer rates
// and the server's RSS, in k msg/s and MiB, one line each.
func series(w io.Writer, results []*scenario.Result) {
	fmt.Fprintln(w, "\nPer second (k msg/s; the warm-up, then the measured window; `|` marks its start):")
	for _, r := range results {
		if len(r.Series) == 0 {
			continue
		}
		var prod, cons, rss []string
		for i, s := range r.Series {
			sep := ""
			if i > 0 && r.Series[i-1].Phase == "warmup" && s.Phase != "warmup" {
				sep = "| "
			}
			if s.Phase == "drain" {
				continue
			}
			prod = append(prod, fmt.Sprintf("%s%.0f", sep, s.Produced/1e3))
			cons = append(cons, fmt.Sprintf("%s%.0f", sep, s.Received/1e3))
			rss = append(rss, fmt.Sprintf("%s%.0f", sep, float64(s.RSS)/(1<<20)))
		}
		fmt.Fprintf(w, "\n- %s, %s, run %d:\n  - producer: %s\n  - consumer: %s\n  - server RSS MiB: %s\n",
			r.Spec.Case, r.System, r.Run, strings.Join(prod, " "), strings.Join(cons, " "), strings.Join(rss, " "))
	}
}

// notes writes what the runs noted (cuts' reasons, incomplete runs).
func notes(w io.Writer, results []*scenario.Result) {
	var lines []string
	for _, r := range results {
		for _, n := range r.Notes {
			lines = append(lines, fmt.Sprintf("- %s, %s, run %d: %s", r.Spec.Case, r.System, r.Run, n))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nNotes:")
	fmt.Fprintln(w, strings.Join(slices.Compact(lines), "\n"))
}

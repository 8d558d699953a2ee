package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
)

func runPush(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("push", stderr)
	dirs := fs.String("dirs", "s2c,c2s", "directions: s2c (server pushes) and/or c2s (clients send)")
	sessions := fs.String("sessions", "1,16", "session counts, each on its own connection")
	sizes := fs.String("sizes", "64,1024", "payload sizes in bytes")
	duration := fs.Duration("duration", 2*time.Second, "measured window of each case")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "warm-up before the window")
	window := fs.Int("window", 512, "s2c app-level credit window in messages, for the systems whose server cannot push flat out without one (centrifuge); tether and raw push as fast as their Send lets them")
	prof := fs.String("profile", "default", "liveness profile of both sides")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	ns, err := ints(*sessions)
	if err != nil {
		return fmt.Errorf("--sessions %w", err)
	}
	szs, err := ints(*sizes)
	if err != nil {
		return fmt.Errorf("--sizes %w", err)
	}
	var jobs []job
	for _, d := range strings.Split(*dirs, ",") {
		if d != "s2c" && d != "c2s" {
			return fmt.Errorf("--dirs: unknown direction %q", d)
		}
		for _, n := range ns {
			for _, sz := range szs {
				jobs = append(jobs, job{spec: scenario.Spec{
					Scenario: "push", Case: fmt.Sprintf("%s %d×%s", d, n, sizeLabel(sz)), Profile: *prof,
					Dir: d, Sessions: n, Size: sz, Window: *window, Warmup: *warmup, Duration: *duration,
				}})
			}
		}
	}
	results, err := runJobs(context.Background(), c, systems, jobs, stderr)
	if err != nil {
		return err
	}
	return output(c, stdout, "push", args, systems, results,
		[]string{scenario.MetricRate, scenario.MetricCPUPerMsg}, func(w io.Writer) { notes(w, results) })
}

func runLatency(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("latency", stderr)
	size := fs.Int("size", 64, "business message size in bytes")
	count := fs.Int("count", 20000, "measured round trips per case")
	warmupCount := fs.Int("warmup-count", 2000, "round trips before measuring")
	pin := fs.String("pin", "both", "business round trip pinned to CPU 0 with taskset (on), unpinned (off), or both")
	prof := fs.String("profile", "default", "liveness profile for the business round trip")
	hbSessions := fs.Int("hb-sessions", 50, "heartbeat: idle sessions, opened spread over one interval (0 skips the heartbeat case)")
	hbInterval := fs.Duration("hb-interval", time.Second, "heartbeat: interval asked for (the datacenter profile allows 1s–30s)")
	hbDuration := fs.Duration("hb-duration", 6*time.Second, "heartbeat: measured window")
	hbProfile := fs.String("hb-profile", "datacenter", "heartbeat: liveness profile of both sides")
	svg := fs.String("svg", "", "write the business round trip's latency distribution (all runs pooled) as SVG to this file")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	var pins []bool
	switch *pin {
	case "both":
		pins = []bool{false, true}
	case "on":
		pins = []bool{true}
	case "off":
		pins = []bool{false}
	default:
		return fmt.Errorf("--pin %q: on, off or both", *pin)
	}
	var jobs []job
	for _, p := range pins {
		jobs = append(jobs, job{pin: p, spec: scenario.Spec{
			Scenario: "latency", Case: "round trip " + sizeLabel(*size), Profile: *prof,
			Sessions: 1, Size: *size, WarmupCount: *warmupCount, Count: *count,
		}})
	}
	if *hbSessions > 0 {
		jobs = append(jobs, job{spec: scenario.Spec{
			Scenario: "heartbeat", Case: fmt.Sprintf("heartbeat %v × %d idle sessions", *hbInterval, *hbSessions), Profile: *hbProfile,
			Sessions: *hbSessions, Heartbeat: *hbInterval, Duration: *hbDuration, Warmup: *hbInterval / 2,
		}})
	}
	results, err := runJobs(context.Background(), c, systems, jobs, stderr)
	if err != nil {
		return err
	}
	if *svg != "" {
		if err := writeSVG(*svg, sizeLabel(*size), systems, results); err != nil {
			return err
		}
	}
	return output(c, stdout, "latency", args, systems, results,
		[]string{scenario.MetricP50, scenario.MetricP99, scenario.MetricP999, scenario.MetricRTPerSec, scenario.MetricCPUPerOp}, nil)
}

// writeSVG plots the business round trip per system and pinning, with
// every run's samples pooled.
func writeSVG(path, size string, systems []string, results []*scenario.Result) error {
	var series []report.Series
	for _, pinned := range []bool{true, false} {
		for _, sys := range systems {
			s := report.Series{Name: sys + map[bool]string{true: ", pinned", false: ", unpinned"}[pinned]}
			for _, r := range results {
				if r.Spec.Scenario == "latency" && r.System == sys && r.Pinned == pinned {
					s.Samples = append(s.Samples, r.Samples...)
				}
			}
			if len(s.Samples) > 0 {
				series = append(series, s)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return report.LatencySVG(f, "Business round trip ("+size+"), all runs pooled", series)
}

// Package cli is tether-bench: it runs each scenario against every system
// (tether and its raw grpc-go twin), each server in a process of its own
// and each driver in another, and reports medians, min–max and ratios.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/bench/internal/system/centrifugesys"
	"github.com/tetherhq/tether/bench/internal/system/rawsys"
	"github.com/tetherhq/tether/bench/internal/system/tethersys"
)

func init() {
	system.Register(tethersys.System())
	system.Register(rawsys.System())
	system.Register(centrifugesys.System())
}

const usage = `tether-bench runs tether and raw grpc-go side by side, each server in its
own process, and prints medians (min–max) and ratios.

usage:
  tether-bench push    [flags]   throughput: s2c and c2s, 1 and 16 sessions, 64 B and 1 KiB
  tether-bench latency [flags]   business round trip (pinned and unpinned) and heartbeat round trip
  tether-bench idle      [flags] idle sessions: server memory, goroutines and heartbeat CPU per session
  tether-bench resume    [flags] one session's resume; mass resume after a server restart
  tether-bench detection [flags] frozen peer and blackholed link: time to detect per profile
  tether-bench fanout  [flags]   publish to a topic with 1,000 and 10,000 subscribers: delivery rate and delay
  tether-bench chaos   [flags]   faults (resets, kills, restarts, NATS outages) under traffic both ways: lost, duplicated, reordered
  tether-bench nodes   [flags]   tether nodes on NATS (one server; a 3-server cluster, R3) beside one memory node: push, fan-out, mass resume after kill -9

Run "tether-bench <scenario> -h" for a scenario's flags.
`

// Main runs tether-bench with args (without the program name) and returns
// the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout)
	case "drive":
		err = drive(args[1:], stdout, stderr)
	case "push":
		err = runPush(args[1:], stdout, stderr)
	case "latency":
		err = runLatency(args[1:], stdout, stderr)
	case "idle":
		err = runIdle(args[1:], stdout, stderr)
	case "resume":
		err = runResume(args[1:], stdout, stderr)
	case "detection":
		err = runDetection(args[1:], stdout, stderr)
	case "xserve":
		err = xserve(args[1:], stdout)
	case "xclient":
		err = xclient(args[1:], stdout, stderr)
	case "fanout":
		err = runFanout(args[1:], stdout, stderr)
	case "chaos":
		err = runChaos(args[1:], stdout, stderr)
	case "nodes":
		err = runNodes(args[1:], stdout, stderr)
	case "relay":
		err = runRelay(args[1:], stdout, stderr)
	case "flow":
		err = runFlow(args[1:], stdout, stderr)
	case "sendwait":
		err = runSendWait(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tether-bench: unknown scenario %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tether-bench: %v\n", err)
		return 1
	}
	return 0
}

// common are the flags every scenario has.
type common struct {
	runs       int
	systems    string
	jsonOut    string
	mdOut      string
	cpuProfile string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.runs, "runs", 3, "runs of every case; tables show the median and min–max")
	fs.StringVar(&c.systems, "systems", "tether,raw", "systems to compare, comma-separated (known: "+strings.Join(system.Names(), ", ")+")")
	fs.StringVar(&c.jsonOut, "json", "", "write every result and the summary as JSON to this file")
	fs.StringVar(&c.mdOut, "md", "", "write the Markdown table to this file instead of stdout")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of each server over the measured window of run 1 into this directory (idle: also a heap profile after GC, *.heap.pprof)")
}

// newFlags returns the flag set of scenario name, with the common flags.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &common{}
	c.register(fs)
	return fs, c
}

// parse parses args and returns the systems to compare.
func (c *common) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(c.systems, ",") {
		if _, err := system.Lookup(strings.TrimSpace(s)); err != nil {
			return nil, err
		}
		out = append(out, strings.TrimSpace(s))
	}
	if c.runs < 1 {
		return nil, fmt.Errorf("--runs %d: at least 1", c.runs)
	}
	return out, nil
}

// job is one case: a spec, pinned or not; only, when set, limits it to
// these systems (a NATS case has no raw twin).
type job struct {
	spec scenario.Spec
	pin  bool
	only []string
}

// runs reports whether j runs on sys.
func (j job) runs(sys string) bool { return j.only == nil || slices.Contains(j.only, sys) }

// runJobs runs every job against every system, runs times, alternating
// the systems' order from run to run; each (job, system, run) gets a
// fresh server process.
func runJobs(ctx context.Context, c *common, systems []string, jobs []job, stderr io.Writer) ([]*scenario.Result, error) {
	var results []*scenario.Result
	total, done := 0, 0
	for _, j := range jobs {
		for _, sys := range systems {
			if j.runs(sys) {
				total += c.runs
			}
		}
	}
	start := time.Now()
	for run := 1; run <= c.runs; run++ {
		order := slices.Clone(systems)
		if run%2 == 0 {
			slices.Reverse(order)
		}
		for _, j := range jobs {
			for _, sys := range order {
				if !j.runs(sys) {
					continue
				}
				done++
				pin := ""
				if j.pin {
					pin = ", pinned"
				}
				fmt.Fprintf(stderr, "[%d/%d %s] run %d/%d: %s %s%s on %s\n", done, total, time.Since(start).Round(time.Second), run, c.runs, j.spec.Scenario, j.spec.Case, pin, sys)
				spec := j.spec
				if c.cpuProfile != "" && run == 1 {
					if err := os.MkdirAll(c.cpuProfile, 0o755); err != nil {
						return nil, err
					}
					spec.CPUProfile = fmt.Sprintf("%s/%s-%s%s-%s.pprof", c.cpuProfile, spec.Scenario, slug(spec.Case), slug(pin), sys)
				}
				res, err := runOne(ctx, sys, spec, j.pin, stderr)
				if err != nil {
					return results, err
				}
				res.Run = run
				res.LoadAvg = machine().LoadAvg
				fmt.Fprintf(stderr, "    %s (loadavg %s)\n", brief(res), res.LoadAvg)
				results = append(results, res)
			}
		}
	}
	return results, nil
}

func runOne(ctx context.Context, sys string, spec scenario.Spec, pin bool, stderr io.Writer) (*scenario.Result, error) {
	args := []string{"serve", "--system", sys, "--profile", spec.Profile}
	if spec.Broker == "nats" || spec.Broker == "nats-core" {
		url, stopNATS, err := startNATS(1)
		if err != nil {
			return nil, err
		}
		defer stopNATS()
		args = append(args, "--nats", url)
		if spec.Broker == "nats-core" {
			args = append(args, "--nats-durability", "node")
		}
	}
	srv, err := startServer(ctx, pin, stderr, sys, args...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	return runDriver(ctx, sys, srv.ready, spec, pin, stderr)
}

func brief(r *scenario.Result) string {
	var parts []string
	for _, m := range []string{scenario.MetricRate, scenario.MetricRTPerSec, scenario.MetricP50, scenario.MetricP99, scenario.MetricP999, scenario.MetricCPUPerMsg, scenario.MetricCPUPerOp} {
		if v, ok := r.Metrics[m]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", m, v))
		}
	}
	return strings.Join(parts, " ")
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '-'
	}, strings.ReplaceAll(s, "×", "x"))
}

// Machine describes where the figures were measured.
type Machine struct {
	CPU       string `json:"cpu"`
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	OSArch    string `json:"os_arch"`
	Taskset   bool   `json:"taskset"`
	GoMaxProc int    `json:"gomaxprocs"`
	// LoadAvg is /proc/loadavg when the results were written: other work
	// on the machine makes figures noisy (ratios less so: the systems
	// alternate within each run).
	LoadAvg string `json:"loadavg"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, GoMaxProc: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	_, err := exec.LookPath("taskset")
	m.Taskset = err == nil
	return m
}

// output writes the JSON file and the Markdown table.
func output(c *common, stdout io.Writer, scen string, args []string, systems []string, results []*scenario.Result, metrics []string, extra func(io.Writer)) error {
	rows := report.Summarize(results, metrics)
	return writeOutput(c, stdout, scen, args, systems, rows, results, func(w io.Writer) {
		report.Markdown(w, rows, systems)
		if extra != nil {
			extra(w)
		}
	})
}

// writeOutput writes the JSON file (results and their summary rows) and,
// after a line naming the command and the machine, the table that table
// writes.
func writeOutput(c *common, stdout io.Writer, scen string, args []string, systems []string, rows []report.Row, results []*scenario.Result, table func(io.Writer)) error {
	mach := machine()
	if c.jsonOut != "" {
		doc := map[string]any{
			"scenario": scen, "args": args, "systems": systems, "machine": mach,
			"time": time.Now().UTC().Format(time.RFC3339), "summary": rows, "results": results,
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	w := stdout
	if c.mdOut != "" {
		f, err := os.Create(c.mdOut)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	fmt.Fprintf(w, "`tether-bench %s %s` · %d CPU %s · %s · %s · load average at the end %s · medians of %d runs (min–max)\n\n",
		scen, strings.Join(args, " "), mach.CPUs, mach.CPU, mach.Kernel, mach.Go, mach.LoadAvg, c.runs)
	table(w)
	return nil
}

// ints parses "1,16".
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive integers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/chaos"
)

// chaosFlags are the flags of "tether-bench chaos".
type chaosFlags struct {
	cases, brokers string
	jsonOut, mdOut string
	logOut         string
	size           chaos.Size
}

func (f *chaosFlags) register(fs *flag.FlagSet) {
	d := chaos.Large()
	fs.StringVar(&f.cases, "cases", "", "faults to run, comma-separated (default all: "+strings.Join(faultNames(), ", ")+")")
	fs.StringVar(&f.brokers, "brokers", "memory,nats,nats-r3", "brokers to run each fault on, where it applies")
	fs.StringVar(&f.jsonOut, "json", "", "write every result as JSON to this file")
	fs.StringVar(&f.mdOut, "md", "", "write the Markdown table to this file instead of stdout")
	fs.StringVar(&f.logOut, "log", "", "write the nodes' and sessions' logs (debug level) to this file")
	fs.IntVar(&f.size.Sessions, "sessions", d.Sessions, "sessions sending and receiving (plus one checker receiving every client message)")
	fs.IntVar(&f.size.Rate, "rate", d.Rate, "messages per second in each direction, all sessions together")
	fs.DurationVar(&f.size.Warmup, "warmup", d.Warmup, "traffic before the fault")
	fs.DurationVar(&f.size.After, "after", d.After, "traffic after the fault")
	fs.DurationVar(&f.size.Down, "down", d.Down, "how long a killed node or NATS server stays down")
	fs.IntVar(&f.size.Pulses, "pulses", d.Pulses, "reset pulses")
	fs.DurationVar(&f.size.PulseOn, "pulse-on", d.PulseOn, "length of a reset pulse: connections are reset, new ones refused")
	fs.DurationVar(&f.size.PulseOff, "pulse-off", d.PulseOff, "time between reset pulses")
	fs.DurationVar(&f.size.NATSDown, "nats-down", d.NATSDown, "length of the NATS outage")
	fs.DurationVar(&f.size.DrainWindow, "drain-window", d.DrainWindow, "the nodes' drain window (0: the server's default)")
	fs.DurationVar(&f.size.DrainJitter, "drain-jitter", d.DrainJitter, "the nodes' reconnect jitter on drain (with --drain-window)")
	fs.DurationVar(&f.size.RollPause, "roll-pause", d.RollPause, "pause between the nodes of a rolling restart")
	fs.DurationVar(&f.size.Settle, "settle", d.Settle, "bound on the wait, after the traffic, for the last messages")
}

// faultNames returns the faults' names, without the broker.
func faultNames() []string {
	var out []string
	for _, c := range chaos.Cases() {
		name, _, _ := strings.Cut(c.Name, "/")
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// selected returns the cases the flags select.
func (f *chaosFlags) selected() ([]chaos.Case, error) {
	faults := faultNames()
	if f.cases != "" {
		faults = nil
		for _, c := range strings.Split(f.cases, ",") {
			c = strings.TrimSpace(c)
			if !slices.Contains(faultNames(), c) {
				return nil, fmt.Errorf("--cases: unknown fault %q (known: %s)", c, strings.Join(faultNames(), ", "))
			}
			faults = append(faults, c)
		}
	}
	var brokers []string
	for _, b := range strings.Split(f.brokers, ",") {
		b = strings.TrimSpace(b)
		if !slices.Contains([]string{chaos.Memory.String(), chaos.NATS.String(), chaos.NATSCluster.String()}, b) {
			return nil, fmt.Errorf("--brokers: unknown broker %q (known: memory, nats, nats-r3)", b)
		}
		brokers = append(brokers, b)
	}
	var out []chaos.Case
	for _, c := range chaos.Cases() {
		name, _, _ := strings.Cut(c.Name, "/")
		if slices.Contains(faults, name) && slices.Contains(brokers, c.Broker.String()) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fault of --cases %q applies to --brokers %q", f.cases, f.brokers)
	}
	if f.size.Sessions < 1 || f.size.Rate < 1 {
		return nil, fmt.Errorf("--sessions %d, --rate %d: want at least 1 each", f.size.Sessions, f.size.Rate)
	}
	return out, nil
}

// runChaos is "tether-bench chaos": every fault of the chaos suite, on
// each broker, at the issue-13 size, in this process.
func runChaos(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f chaosFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cases, err := f.selected()
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	if f.logOut != "" {
		lf, err := os.Create(f.logOut)
		if err != nil {
			return err
		}
		defer lf.Close()
		log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var results []chaos.Result
	start := time.Now()
	for i, c := range cases {
		fmt.Fprintf(stderr, "[%d/%d %s] %s: %s on %s\n", i+1, len(cases), time.Since(start).Round(time.Second), c.Name, c.Fault, c.Broker)
		r, err := chaos.RunStandalone(c, f.size, stderr, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "    %v\n", r)
		results = append(results, r)
	}
	return chaosOutput(&f, stdout, args, results)
}

// drainLabel names the drain window, 0 being the server's default.
func drainLabel(d time.Duration) string {
	if d == 0 {
		return "the server's default"
	}
	return d.String()
}

// chaosOutput writes the JSON file and the Markdown table, with each
// broken promise listed under it.
func chaosOutput(f *chaosFlags, stdout io.Writer, args []string, results []chaos.Result) error {
	mach := machine()
	if f.jsonOut != "" {
		doc := map[string]any{
			"scenario": "chaos", "args": args, "machine": mach, "size": f.size,
			"time": time.Now().UTC().Format(time.RFC3339), "results": results,
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	w := stdout
	if f.mdOut != "" {
		file, err := os.Create(f.mdOut)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	fmt.Fprintf(w, "`tether-bench chaos %s` · %d CPU %s · %s · %s · load average at the end %s · %d sessions, %d msg/s each way\n\n",
		strings.Join(args, " "), mach.CPUs, mach.CPU, mach.Kernel, mach.Go, mach.LoadAvg, f.size.Sessions, f.size.Rate)
	fmt.Fprintf(w, "Faults: %d reset pulses of %v, %v apart; a killed node or NATS server down %v; NATS outage %v; drain window %s. Lost counts what never arrived; in brackets, how many of those nobody was told about.\n\n",
		f.size.Pulses, f.size.PulseOn, f.size.PulseOff, f.size.Down, f.size.NATSDown, drainLabel(f.size.DrainWindow))
	chaos.Markdown(w, results)
	for _, r := range results {
		for _, v := range r.Violations() {
			fmt.Fprintf(w, "\n- %s on %s: %s", r.Fault, r.Broker, v)
		}
	}
	fmt.Fprintln(w)
	return nil
}

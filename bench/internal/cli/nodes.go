package cli

// The multi-node scenario of issue 16: tether nodes sharing an embedded
// NATS broker (one server, replicas 1; or a three-server cluster, replicas
// 3), beside one node with the in-memory broker, measured in the same run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/bench/internal/report"
	"github.com/tetherhq/tether/bench/internal/scenario"
)

// The brokers of the multi-node scenario; a result's System names its
// broker, so that the table has a column per broker and ratios against
// brokerMemory.
const (
	brokerMemory  = "memory"    // one node, the in-memory broker
	brokerNATS    = "nats"      // the nodes on one NATS server, replicas 1
	brokerCore    = "nats-core" // as nats, with the logs on their node (--nats-durability node)
	brokerCluster = "nats-r3"   // the nodes on a three-server NATS cluster, replicas 3
)

// brokerNodes are the NATS servers and the JetStream replicas of a broker,
// and whether its nodes keep session logs in their memory
// (--nats-durability node).
var brokerNodes = map[string]struct {
	servers, replicas int
	nodeLogs          bool
}{
	brokerNATS:    {1, 1, false},
	brokerCore:    {1, 1, true},
	brokerCluster: {3, 3, false},
}

func init() {
	report.Counts = append(report.Counts, MetricResumedCount, MetricAgain, MetricLostC2S, MetricLostS2C, MetricNotBack)
}

// nodesFlags are the flags of "tether-bench nodes".
type nodesFlags struct {
	cases, brokers string
	nodes          int
	prof           string
	// push
	count int
	size  int
	// fanout
	subscribers         string
	deliveries, warmups int
	inflight            int
	// resume
	mass, perProcess, msgs int
	rate                   float64
	svg                    string
	settle                 time.Duration
}

// runNodes is "tether-bench nodes": push, fan-out and mass resume on
// several tether nodes over NATS, beside one node on the memory broker.
func runNodes(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	fs, c := newFlags("nodes", stderr)
	_ = fs.Set("systems", "tether")
	var f nodesFlags
	fs.StringVar(&f.cases, "cases", "push,fanout,resume", "cases, comma-separated: push (session to session through the SDK, on one node and across nodes), fanout (a topic's subscribers spread over the nodes), resume (mass resume after kill -9 of the node holding every session)")
	fs.StringVar(&f.brokers, "brokers", "memory,nats,nats-core,nats-r3", "brokers, comma-separated: memory (one node), nats (the nodes on one NATS server, replicas 1), nats-core (as nats, with session logs on their node: --nats-durability node), nats-r3 (on a three-server NATS cluster, replicas 3)")
	fs.IntVar(&f.nodes, "nodes", 3, "tether nodes on a NATS broker (at least 2)")
	fs.StringVar(&f.prof, "profile", "default", "liveness profile of every side")
	fs.IntVar(&f.count, "count", 20000, "push: messages the producer session sends flat out to the consumer's client id")
	fs.IntVar(&f.size, "size", 64, "push and fanout: message size in bytes")
	fs.StringVar(&f.subscribers, "subscribers", "1000,10000", "fanout: subscriber counts, each subscriber its own session (at most ~19,000: one driver process)")
	fs.IntVar(&f.deliveries, "deliveries", 200000, "fanout: measured deliveries per case (publishes = this ÷ subscribers, at least 10)")
	fs.IntVar(&f.warmups, "warmup-deliveries", 20000, "fanout: warm-up deliveries (publishes = this ÷ subscribers, at least 2)")
	fs.IntVar(&f.inflight, "inflight", 2, "fanout: publishes in flight")
	fs.IntVar(&f.mass, "mass", 10000, "resume: sessions, all on the node that is killed")
	fs.IntVar(&f.perProcess, "per-process", 5000, "resume: sessions per client process")
	fs.IntVar(&f.msgs, "msgs", 2, "resume: tagged messages each session sends, and burst messages it is sent, before and after the kill")
	fs.Float64Var(&f.rate, "rate", 2000, "resume on NATS: sessions per second, all client processes together, that send their tagged messages and ask for their burst in each round (0: all at once; a burst of 20,000 log appends on one node at once times some of them out on a busy 2-CPU machine)")
	fs.StringVar(&f.svg, "svg", "", "resume: write the arrival histogram (run 1, every broker) as SVG to this file")
	fs.DurationVar(&f.settle, "settle", 30*time.Second, "push: give up on the last messages after this long without one")
	systems, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if !slices.Equal(systems, []string{"tether"}) {
		return fmt.Errorf("--systems %s: nodes compares tether's brokers, tether alone (its columns are the brokers)", c.systems)
	}
	brokers, err := f.brokerList()
	if err != nil {
		return err
	}
	cases, err := f.caseList()
	if err != nil {
		return err
	}
	n := &nodesRun{f: &f, c: c, stderr: stderr, arrivals: map[string][]float64{}}
	results, err := xloop(c, brokers, cases, stderr, n.body)
	if err != nil {
		return err
	}
	results = withMemoryAcross(results)
	if err := n.writeSVG(brokers); err != nil {
		return err
	}
	rows := report.SummarizeAgainst(results, nodesMetrics, brokerMemory)
	return nodesOutput(c, stdout, args, brokers, rows, results, f.nodes)
}

// nodesMetrics are the metrics of the table, in order.
var nodesMetrics = []string{
	scenario.MetricRate, scenario.MetricWall, scenario.MetricP50, scenario.MetricP99,
	MetricFailoverP50, MetricFailoverP99, MetricCompletion, MetricEstablishRate, MetricResumedCount, MetricNotBack, MetricAgain,
	scenario.MetricLostMsgs, MetricLostC2S, MetricLostS2C, scenario.MetricLost, MetricDuplicated, scenario.MetricReordered, scenario.MetricCuts,
}

func (f *nodesFlags) brokerList() ([]string, error) {
	var out []string
	for _, b := range strings.Split(f.brokers, ",") {
		b = strings.TrimSpace(b)
		if _, ok := brokerNodes[b]; !ok && b != brokerMemory {
			return nil, fmt.Errorf("--brokers: unknown broker %q (memory, nats, nats-core, nats-r3)", b)
		}
		out = append(out, b)
	}
	if f.nodes < 2 {
		return nil, fmt.Errorf("--nodes %d: at least 2 (a node to kill and one to resume on)", f.nodes)
	}
	return out, nil
}

// Case names of the scenario; fanout's carry the subscriber count.
const (
	casePushSame   = "push, same node"
	casePushAcross = "push, across nodes"
	caseResume     = "mass resume after kill -9"
)

func (f *nodesFlags) caseList() ([]string, error) {
	var out []string
	for _, cs := range strings.Split(f.cases, ",") {
		switch strings.TrimSpace(cs) {
		case "push":
			if f.count < 1 {
				return nil, fmt.Errorf("--count %d: at least 1", f.count)
			}
			out = append(out, casePushSame, casePushAcross)
		case "fanout":
			ns, err := ints(f.subscribers)
			if err != nil {
				return nil, fmt.Errorf("--subscribers %w", err)
			}
			for _, n := range ns {
				if n > 19000 {
					return nil, fmt.Errorf("--subscribers %d: one driver process holds at most ~19,000 connections (20,000 fds)", n)
				}
				out = append(out, fanoutCase(n))
			}
		case "resume":
			if f.mass < 1 || f.perProcess < 1 || f.msgs < 1 {
				return nil, fmt.Errorf("--mass %d, --per-process %d, --msgs %d: at least 1 each", f.mass, f.perProcess, f.msgs)
			}
			out = append(out, caseResume)
		default:
			return nil, fmt.Errorf("--cases: unknown case %q (push, fanout, resume)", cs)
		}
	}
	return out, nil
}

func fanoutCase(n int) string { return fmt.Sprintf("fanout to %d subscribers", n) }

// nodesRun is one "tether-bench nodes" invocation.
type nodesRun struct {
	f        *nodesFlags
	c        *common
	stderr   io.Writer
	arrivals map[string][]float64 // resume, run 1: by broker
}

// body runs case cs on broker b (xloop's system) once.
func (n *nodesRun) body(b, cs string, run int) (*scenario.Result, error) {
	ctx := context.Background()
	var (
		r   *scenario.Result
		err error
	)
	switch {
	case cs == caseResume:
		var arr []float64
		r, arr, err = n.resume(ctx, b, run)
		if err == nil && run == 1 {
			n.arrivals[b] = arr
		}
	case cs == casePushAcross && b == brokerMemory:
		return nil, notApplicable{"one memory node has no other node: its same-node run stands for both"}
	default:
		spec := n.spec(cs)
		spec.Broker = b
		r, err = n.drive(ctx, b, spec)
	}
	if err != nil {
		return nil, err
	}
	r.Spec.Broker = b
	return r, nil
}

// spec returns the driver's Spec of a push or fanout case.
func (n *nodesRun) spec(cs string) scenario.Spec {
	f := n.f
	if cs == casePushSame || cs == casePushAcross {
		return scenario.Spec{Scenario: "relay", Case: cs, Profile: f.prof, Sessions: 2, Size: max(f.size, 9),
			Count: f.count, Settle: f.settle, Across: cs == casePushAcross}
	}
	var subs int
	_, _ = fmt.Sscanf(cs, "fanout to %d subscribers", &subs)
	return scenario.Spec{Scenario: "fanout", Case: cs, Profile: f.prof, Sessions: subs, Size: max(f.size, 13), Window: f.inflight,
		WarmupCount: max(f.warmups/subs, 2), Count: max((f.deliveries+subs-1)/subs, 10)}
}

// drive starts broker b's nodes (serve processes) and runs spec's driver
// against them.
func (n *nodesRun) drive(ctx context.Context, b string, spec scenario.Spec) (*scenario.Result, error) {
	ns, err := n.startNodes(ctx, b, false)
	if err != nil {
		return nil, err
	}
	defer ns.stop()
	addrs := make([]string, len(ns.nodes))
	for i, s := range ns.nodes {
		addrs[i] = s.Addr
	}
	return runDriver(ctx, "tether", ns.nodes[0].ready, spec, false, n.stderr, "--addrs", strings.Join(addrs, ","))
}

// nodeSet is a case's tether nodes and the NATS servers they share.
type nodeSet struct {
	// nodes are the node processes; one that was killed is set to nil.
	nodes    []*serverProc
	stopNATS func() // nil on the memory broker
}

// stop stops the nodes still running, then the NATS servers.
func (ns *nodeSet) stop() {
	for _, s := range ns.nodes {
		if s != nil {
			s.stop()
		}
	}
	if ns.stopNATS != nil {
		ns.stopNATS()
	}
}

// startNodes starts broker b's nodes: one serve (or, with track, xserve
// --track) process on the memory broker, or f.nodes of them, named n1, n2,
// …, on embedded NATS servers started here.
func (n *nodesRun) startNodes(ctx context.Context, b string, track bool) (*nodeSet, error) {
	sub := "serve"
	if track {
		sub = "xserve"
	}
	base := []string{sub, "--system", "tether", "--profile", n.f.prof}
	if track {
		base = append(base, "--track")
	}
	if b == brokerMemory {
		s, err := startServer(ctx, false, n.stderr, "tether", base...)
		if err != nil {
			return nil, err
		}
		return &nodeSet{nodes: []*serverProc{s}}, nil
	}
	bn := brokerNodes[b]
	urls, stopNATS, err := startNATS(bn.servers)
	if err != nil {
		return nil, err
	}
	ns := &nodeSet{nodes: make([]*serverProc, n.f.nodes), stopNATS: stopNATS}
	errs := make([]error, n.f.nodes)
	start := func(i int) {
		args := append(slices.Clone(base), "--nats", urls, "--replicas", fmt.Sprint(bn.replicas), "--id", fmt.Sprintf("n%d", i+1))
		if bn.nodeLogs {
			args = append(args, "--nats-durability", "node")
		}
		if ns.nodes[i], errs[i] = startServer(ctx, false, n.stderr, "tether", args...); errs[i] != nil {
			errs[i] = fmt.Errorf("node n%d: %w", i+1, errs[i])
		}
	}
	// n1 first: it creates the JetStream streams, which the others then
	// find (several nodes creating R3 streams at once on a new cluster
	// time out and retry for seconds); the others together.
	start(0)
	var wg sync.WaitGroup
	for i := 1; i < n.f.nodes && errs[0] == nil; i++ {
		wg.Go(func() { start(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		ns.stop()
		return nil, err
	}
	return ns, nil
}

// withMemoryAcross adds, for each push run on one memory node, a copy as
// the across-nodes figure: one node has no other node, and the goal
// compares the NATS path across nodes with that one node.
func withMemoryAcross(results []*scenario.Result) []*scenario.Result {
	out := slices.Clone(results)
	for _, r := range results {
		if r.System == brokerMemory && r.Spec.Case == casePushSame {
			across := *r
			across.Spec.Case = casePushAcross
			out = append(out, &across)
		}
	}
	return out
}

// writeSVG plots the mass resume's arrivals of run 1, one series per
// broker, when --svg asks for it.
func (n *nodesRun) writeSVG(brokers []string) error {
	if n.f.svg == "" || len(n.arrivals) == 0 {
		return nil
	}
	var series []report.Series
	for _, b := range brokers {
		if a, ok := n.arrivals[b]; ok {
			series = append(series, report.Series{Name: b, Samples: a})
		}
	}
	f, err := os.Create(n.f.svg)
	if err != nil {
		return err
	}
	err = report.HistogramSVG(f, fmt.Sprintf("Sessions back after kill -9 of the node holding them (%d sessions, run 1)", n.f.mass), "ms after the kill", series)
	return errors.Join(err, f.Close())
}

// nodesOutput writes the JSON file and the Markdown table, a column per
// broker and ratios against the memory broker.
func nodesOutput(c *common, stdout io.Writer, args, brokers []string, rows []report.Row, results []*scenario.Result, nodes int) error {
	return writeOutput(c, stdout, "nodes", args, brokers, rows, results, func(w io.Writer) {
		report.MarkdownAgainst(w, rows, brokers, brokerMemory)
		fmt.Fprintf(w, "\nmemory: one tether node, the in-memory broker (its push figure stands for both push rows); nats: %d tether nodes on one embedded NATS server, JetStream replicas 1; nats-core: the same with session logs in the holding node's memory (--nats-durability node: a resume on another node loses what the client had not received, and says so); nats-r3: %d tether nodes on an embedded three-server NATS cluster, replicas 3. Every node runs tetherd's defaults but for --nats-durability; the SDK its defaults.\n", nodes, nodes)
		notes(w, results)
	})
}

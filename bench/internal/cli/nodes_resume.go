package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetherhq/tether/bench/internal/scenario"
)

// resume runs the mass resume on broker b: on one memory node, massResume
// (the node is killed and started again on its address: the sessions come
// back fresh, resumed=false, as nothing survived); on NATS, failover.
func (n *nodesRun) resume(ctx context.Context, b string, run int) (*scenario.Result, []float64, error) {
	if b == brokerMemory {
		return massResume(ctx, "tether", n.f.prof, n.f.mass, n.f.perProcess, n.f.msgs, run, "", n.stderr)
	}
	return n.failover(ctx, b, run)
}

// failover opens f.mass SDK sessions, all on node n1, in client processes
// whose in-process balancer (xclient --backends) sends every new
// connection to n1; exchanges tagged messages both ways (the sessions
// start theirs at f.rate a second); then has the
// balancers send new connections to the other nodes, round-robin (a load
// balancer that dropped n1), kills n1 with SIGKILL and times every session
// back at the other nodes: each SDK session notices its broken connection,
// redials by itself and resumes from the NATS broker. It then exchanges
// messages again and checks that every tagged message and every burst
// message arrived exactly once. The arrivals are ms after the kill,
// sorted.
func (n *nodesRun) failover(ctx context.Context, b string, run int) (*scenario.Result, []float64, error) {
	f := n.f
	ns, err := n.startNodes(ctx, b, true)
	if err != nil {
		return nil, nil, err
	}
	defer ns.stop()
	victim, survivors := ns.nodes[0], slices.Clone(ns.nodes[1:])
	clients, err := startClients(ctx, n.stderr, f.mass, f.perProcess, 10*time.Minute, func(i, procs int) []string {
		return []string{"--system", "tether", "--backends", victim.Addr, "--profile", f.prof, "--rate", fmt.Sprint(f.rate / float64(procs)),
			"--id", fmt.Sprintf("failover-%s-%d-%d-%d", b, run, time.Now().UnixNano(), i)}
	})
	if err != nil {
		return nil, nil, err
	}
	defer quitAll(clients)
	var notes []string
	var short roundShort
	if err := massRound(ctx, []*serverProc{victim}, clients, f.mass, f.msgs, 1); errors.As(err, &short) {
		notes = append(notes, short.Error()+" (before the kill): what is missing counts as lost")
	} else if err != nil {
		return nil, nil, err
	}
	time.Sleep(200 * time.Millisecond) // acks are batched (20 ms)
	_, before, err := victim.state(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	addrs := make([]string, len(survivors))
	for i, s := range survivors {
		addrs[i] = s.Addr
	}
	if err := askAll(clients, "backends "+strings.Join(addrs, ","), time.Minute); err != nil {
		return nil, nil, err
	}
	clientCPU := cpuAll(clients)
	t0 := time.Now()
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.done
	ns.nodes[0] = nil
	profiled := n.profileSurvivors(ctx, b, run, survivors)
	// Every return waits for the profiles: none is left running, or cut
	// short by the nodes' stop.
	profileErr := func() error { err := <-profiled; profiled = closedErr; return err }
	defer func() { _ = profileErr() }()
	cb, err := awaitArrivals(ctx, survivors, f.mass, t0)
	if err != nil {
		return nil, nil, err
	}
	if missing := f.mass - len(cb.arr); missing > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d sessions not back within %v of the kill", missing, f.mass, arrivalBound))
	}
	if len(cb.arr) == 0 {
		return nil, nil, fmt.Errorf("no session back within %v of the kill", arrivalBound)
	}
	arr := cb.arr
	// Until the last arrival: read before the profiles end.
	clientCPU = cpuAll(clients) - clientCPU
	var serverCPU time.Duration
	for _, s := range survivors {
		st, _, err := s.state(ctx, false)
		if err != nil {
			return nil, nil, err
		}
		serverCPU += st.CPU
	}
	if err := profileErr(); err != nil {
		return nil, nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := massRound(ctx, survivors, clients, f.mass, f.msgs, 2); errors.As(err, &short) {
		notes = append(notes, short.Error()+": what is missing counts as lost")
	} else if err != nil {
		return nil, nil, err
	}
	time.Sleep(200 * time.Millisecond)
	tallies := []map[string]int{before.Tally}
	for _, s := range survivors {
		_, after, err := s.state(ctx, false)
		if err != nil {
			return nil, nil, err
		}
		tallies = append(tallies, after.Tally)
	}
	rep, err := clientReport(clients)
	if err != nil {
		return nil, nil, err
	}
	r := &scenario.Result{Metrics: map[string]float64{}, Spec: scenario.Spec{Scenario: "mass-failover", Profile: f.prof, Sessions: f.mass, Broker: b}}
	lost, dup := massOutcome(r, f.mass, f.msgs, arr, cb.resumed, tallies, rep)
	r.Metrics[MetricAgain] = float64(cb.again)
	r.Metrics[MetricNotBack] = float64(f.mass - len(arr))
	r.Notes = notes
	fmt.Fprintf(n.stderr, "    failover: %d sessions back on %d nodes in %.2fs (p10 %.0f ms, p50 %.0f ms, p90 %.0f ms, p99 %.0f ms; %d resumed, %d fresh; %d established again later); lost %d, duplicated %d; CPU until the last arrival: clients %.2fs, surviving nodes %.2fs\n",
		len(arr), len(survivors), arr[len(arr)-1]/1e3, scenario.Percentile(arr, 0.1), scenario.Percentile(arr, 0.5), scenario.Percentile(arr, 0.9), scenario.Percentile(arr, 0.99),
		cb.resumed, len(arr)-cb.resumed, cb.again, lost, dup, clientCPU.Seconds(), serverCPU.Seconds())
	return r, arr, nil
}

// closedErr is a channel that reports no error at once.
var closedErr = func() chan error {
	c := make(chan error, 1)
	close(c)
	return c
}()

// failoverProfile is how much of the time after the kill a surviving
// node's CPU profile covers.
const failoverProfile = 4 * time.Second

// profileSurvivors writes, in run 1 with --cpuprofile, a CPU profile of
// each surviving node over the first failoverProfile after the kill, as
// mass-failover-<broker>-<node>.pprof, and of this process, where the
// embedded NATS servers run, as mass-failover-<broker>-nats.pprof; the
// channel reports when all are written.
func (n *nodesRun) profileSurvivors(ctx context.Context, b string, run int, survivors []*serverProc) <-chan error {
	done := make(chan error, 1)
	dir := n.c.cpuProfile
	if dir == "" || run != 1 {
		done <- nil
		return done
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		done <- err
		return done
	}
	errs := make([]error, len(survivors)+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		errs[len(survivors)] = profileSelf(ctx, failoverProfile, fmt.Sprintf("%s/mass-failover-%s-nats.pprof", dir, b))
	})
	for i, s := range survivors {
		wg.Go(func() {
			errs[i] = s.ctl.Profile(ctx, failoverProfile, fmt.Sprintf("%s/mass-failover-%s-n%d.pprof", dir, b, i+2))
		})
	}
	go func() {
		wg.Wait()
		done <- errors.Join(errs...)
	}()
	return done
}

// comeback is how the sessions came back after a kill.
type comeback struct {
	// arr is each session's first arrival at a surviving node, in ms
	// after the kill, sorted.
	arr []float64
	// resumed counts the sessions whose first arrival resumed them.
	resumed int
	// again counts the arrivals after a session's first: a session
	// established once more (adopted by another node, or taken over by a
	// newer stream of its own).
	again int
}

// arrivalBound bounds the wait for the sessions to come back after a
// kill.
const arrivalBound = 3 * time.Minute

// awaitArrivals waits until n distinct sessions arrived at the servers
// together (by client id), or arrivalBound passed since t0, and returns how
// they came back: those that did by then.
func awaitArrivals(ctx context.Context, servers []*serverProc, n int, t0 time.Time) (comeback, error) {
	for {
		first := map[string]xarrival{}
		total := 0
		for _, s := range servers {
			_, x, err := s.state(ctx, false)
			if err != nil {
				return comeback{}, err
			}
			total += len(x.Arrivals)
			for id, a := range x.Firsts {
				if f, ok := first[id]; !ok || a.At < f.At {
					first[id] = a
				}
			}
		}
		if len(first) >= n || time.Since(t0) > arrivalBound {
			cb := comeback{again: total - len(first)}
			for _, a := range first {
				cb.arr = append(cb.arr, float64(a.At-t0.UnixNano())/1e6)
				if a.Resumed {
					cb.resumed++
				}
			}
			slices.Sort(cb.arr)
			return cb, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// profileSelf writes a CPU profile of this process over d to path.
func profileSelf(ctx context.Context, d time.Duration, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	return f.Close()
}

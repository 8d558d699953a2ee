package chaos

import (
	"fmt"
	"log/slog"
	"time"
)

// TB is the part of testing.TB the harness uses: a *testing.T, or the
// runner of [RunStandalone]. Fatalf must not return.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(f func())
	TempDir() string
}

// Bounds of the settling after the traffic.
const (
	// quiet is how long nothing must arrive, with every session connected
	// and nothing pending, for what is missing to count as lost.
	quiet = 2 * time.Second
	// lateCopies is how long nothing must arrive, once everything did,
	// for the duplicates to be counted.
	lateCopies = 500 * time.Millisecond
	poll       = 20 * time.Millisecond
)

// Result is what one case measured.
type Result struct {
	Case     string `json:"case"`
	Fault    string `json:"fault"`
	Broker   string `json:"broker"`
	Mode     string `json:"mode"`
	Sessions int    `json:"sessions"`
	Rate     int    `json:"rate_per_direction"`
	// S2C and C2S are the counts per direction; UnreportedExamples names a
	// few of the losses nobody was told about, as "stream#n".
	S2C                Count    `json:"s2c"`
	C2S                Count    `json:"c2s"`
	UnreportedExamples []string `json:"unreported_examples,omitempty"`
	// ReorderedExamples names a few reordered or repeated arrivals, as
	// "stream#n after m" or "stream#n again after m".
	ReorderedExamples []string `json:"reordered_examples,omitempty"`
	// Reconnects is how many times a session left StateConnected and came
	// back; ReconnectP50 and ReconnectMax are the times it took, in
	// seconds.
	Reconnects   int     `json:"reconnects"`
	ReconnectP50 float64 `json:"reconnect_p50_s"`
	ReconnectMax float64 `json:"reconnect_max_s"`
	// Fresh counts the sessions that came back not resumed, by the
	// server's reason, and "lost range" those resumed with a lost range.
	Fresh map[string]int `json:"fresh,omitempty"`
	// Placement is how many sessions each node held before the fault.
	Placement map[string]int `json:"placement"`
	// Settled is false when, Settle after the traffic, a session was still
	// away or had messages pending.
	Settled bool `json:"settled"`
	// Closed lists the sessions that ended for good; Errors the first few
	// errors the counts do not explain.
	Closed []string `json:"closed,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Retries counts why publishers and SendWait senders retried, by the
	// call and its error: each retry is a failure reported to the sender.
	Retries map[string]int `json:"retries,omitempty"`
	// FaultSeconds is how long the fault took, TotalSeconds the whole case.
	FaultSeconds float64 `json:"fault_s"`
	TotalSeconds float64 `json:"total_s"`
}

// Promise returns what the case's broker promises: "0 lost, duplicated,
// reordered" (NATS) or "every loss reported" (Memory).
func (c Case) Promise() string { return promise(c.Broker.String()) }

// Violations returns how r breaks the promise of its broker, empty when it
// keeps it. On NATS every message arrives once and in order; on Memory,
// every loss is reported to its sender or its receiver. On both, every
// session is back and settled in time, none ends for good, and nothing
// unexplained happens.
func (r Result) Violations() []string {
	var out []string
	for _, d := range []struct {
		name string
		c    Count
	}{{"server→client", r.S2C}, {"client→server", r.C2S}} {
		if r.Broker == Memory.String() {
			if d.c.Unreported > 0 {
				out = append(out, fmt.Sprintf("%s: %d of %d lost, %d of them reported to nobody (for example %v)", d.name, d.c.Lost, d.c.Sent, d.c.Unreported, r.UnreportedExamples))
			}
			continue
		}
		if d.c.Lost > 0 || d.c.Duplicated > 0 || d.c.Reordered > 0 {
			out = append(out, fmt.Sprintf("%s: of %d sent, %d lost (%d reported to nobody), %d duplicated, %d reordered", d.name, d.c.Sent, d.c.Lost, d.c.Unreported, d.c.Duplicated, d.c.Reordered))
		}
	}
	if !r.Settled {
		out = append(out, "not every session was back, with nothing pending, within the settle bound")
	}
	if len(r.Closed) > 0 {
		out = append(out, fmt.Sprintf("sessions ended for good: %v", r.Closed))
	}
	if len(r.Errors) > 0 {
		out = append(out, fmt.Sprintf("unexpected: %v", r.Errors))
	}
	return out
}

// Run runs case c at size: it starts the case's NATS servers, tether nodes
// and fault proxies, connects the sessions through the proxies, sends
// numbered messages both ways, injects the fault, keeps sending for
// size.After, then waits (within size.Settle) for the last messages and
// counts. Everything it started is stopped when tb ends. log receives the
// nodes' and sessions' logs.
func Run(tb TB, c Case, size Size, log *slog.Logger) Result {
	tb.Helper()
	start := time.Now()
	cl := startCluster(tb, c.Broker, size, log)
	tally := NewTally()
	tr := startTraffic(tb, cl, size.Sessions, c.Mode, tally)
	placement := tr.placement()
	stop := make(chan struct{})
	tr.run(stop, size.Rate)
	time.Sleep(size.Warmup)
	faultStart := time.Now()
	c.inject(&env{tb: tb, c: cl, tr: tr, size: size})
	faultTime := time.Since(faultStart)
	time.Sleep(size.After)
	close(stop)
	tr.wait()
	settled := settle(tr, tally, size.Settle)

	r := Result{
		Case: c.Name, Fault: c.Fault, Broker: c.Broker.String(), Mode: c.Mode.String(),
		Sessions: size.Sessions, Rate: size.Rate, Placement: placement, Settled: settled,
		FaultSeconds: faultTime.Seconds(),
	}
	var ex1, ex2 []string
	r.S2C, ex1 = tally.Count(ServerToClient, 5)
	r.C2S, ex2 = tally.Count(ClientToServer, 5)
	r.UnreportedExamples = append(ex1, ex2...)
	r.ReorderedExamples = append(tally.Reorders(ServerToClient, 5), tally.Reorders(ClientToServer, 5)...)
	times := tr.reconnectTimes()
	r.Reconnects = len(times)
	if len(times) > 0 {
		r.ReconnectP50 = times[len(times)/2].Seconds()
		r.ReconnectMax = times[len(times)-1].Seconds()
	}
	r.Closed, r.Errors = tr.problems()
	r.Retries = tr.retryCounts()
	r.Fresh = tr.freshCounts()
	r.TotalSeconds = time.Since(start).Seconds()
	return r
}

// settle waits, within bound, until every message arrived and every
// session is connected with nothing pending, then for late copies; or,
// with messages missing, until nothing arrived for a while with every
// session settled (the missing ones are lost). It returns false when the
// sessions did not settle within bound.
func settle(tr *traffic, tally *Tally, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	last, lastChange := tally.ReceivedTotal(), time.Now()
	for {
		if n := tally.ReceivedTotal(); n != last {
			last, lastChange = n, time.Now()
		}
		settled := tr.settled()
		quietFor := time.Since(lastChange)
		switch {
		case settled && tally.Missing() == 0 && quietFor >= lateCopies:
			return true
		case settled && quietFor >= quiet:
			return true
		case time.Now().After(deadline):
			return false
		}
		time.Sleep(poll)
	}
}

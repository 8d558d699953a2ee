package chaos

import (
	"context"
	"time"
)

// Size is how big and how long a run is.
type Size struct {
	// Sessions is how many sessions send and receive (the checker, which
	// receives every client message, is one more).
	Sessions int
	// Rate is the messages per second of each direction, all sessions
	// together.
	Rate int
	// Warmup is the traffic before the fault, After the traffic once it
	// has ended.
	Warmup, After time.Duration
	// Down is how long a killed node or NATS server stays down before it
	// is started again.
	Down time.Duration
	// Pulses is the number of reset pulses; during each, for PulseOn,
	// every connection through the proxies is reset and new ones are
	// refused; PulseOff separates them.
	Pulses            int
	PulseOn, PulseOff time.Duration
	// NATSDown is how long the NATS server stays down in the NATS outage.
	NATSDown time.Duration
	// DrainWindow and DrainJitter configure the nodes' drain (see
	// server.WithDrain); zero keeps the server's defaults. RollPause
	// separates the nodes of a rolling restart.
	DrainWindow, DrainJitter time.Duration
	RollPause                time.Duration
	// Settle bounds the wait, after the traffic, for every session to be
	// back and every message to arrive.
	Settle time.Duration
}

// Small is the size the test suite runs in CI: 8 sessions, 80 messages per
// second each way, faults of about a second, and the NATS outage of 10 s
// that issue 13 names.
func Small() Size {
	return Size{
		Sessions: 8, Rate: 80,
		Warmup: time.Second, After: 2 * time.Second, Down: time.Second,
		Pulses: 3, PulseOn: 300 * time.Millisecond, PulseOff: 700 * time.Millisecond,
		NATSDown:    10 * time.Second,
		DrainWindow: 500 * time.Millisecond, DrainJitter: 200 * time.Millisecond, RollPause: 500 * time.Millisecond,
		Settle: 45 * time.Second,
	}
}

// Large is the size tether-bench chaos runs by default, after issue 13's
// setup: 50 sessions, 200 messages per second each way, twelve 1 s reset
// pulses, faults of 3 s, the server's default drain.
func Large() Size {
	return Size{
		Sessions: 50, Rate: 200,
		Warmup: 3 * time.Second, After: 5 * time.Second, Down: 3 * time.Second,
		Pulses: 12, PulseOn: time.Second, PulseOff: time.Second,
		NATSDown:  10 * time.Second,
		RollPause: 2 * time.Second,
		Settle:    60 * time.Second,
	}
}

// Case is one fault on one broker.
type Case struct {
	// Name identifies the case: "<fault>/<broker>", for test names and
	// tether-bench's --cases.
	Name string `json:"name"`
	// Fault says what happens, for the table.
	Fault  string   `json:"fault"`
	Broker Broker   `json:"-"`
	Mode   SendMode `json:"-"`
	inject func(e *env)
}

// fault is one kind of fault, on the brokers it applies to.
type fault struct {
	name    string
	what    string
	mode    SendMode
	brokers []Broker
	inject  func(e *env)
}

var faults = []fault{
	{"reset-pulses", "reset pulses through every proxy", Send, []Broker{Memory, NATS}, resetPulses},
	{"kill-receiver-send", "kill -9 of the receiver's node, Send", Send, []Broker{Memory, NATS}, killReceiver},
	{"kill-receiver-sendwait", "kill -9 of the receiver's node, SendWait", SendWait, []Broker{Memory, NATS}, killReceiver},
	{"rolling-restart", "rolling restart (drain, start) of every node", Send, []Broker{Memory, NATS}, rollingRestart},
	{"kill-nats-server", "the NATS server the receiver's node uses killed", Send, []Broker{NATSCluster}, killNATSServer},
	{"nats-down", "NATS down", Send, []Broker{NATS}, natsDown},
}

// Cases returns every case: each fault on each broker it applies to. On
// Memory, killing the receiver's node is restarting the one node.
func Cases() []Case {
	var out []Case
	for _, f := range faults {
		for _, b := range f.brokers {
			out = append(out, Case{Name: f.name + "/" + b.String(), Fault: f.what, Broker: b, Mode: f.mode, inject: f.inject})
		}
	}
	return out
}

// env is what a fault acts on.
type env struct {
	tb   TB
	c    *cluster
	tr   *traffic
	size Size
}

// resetPulses resets every connection through the proxies, and refuses new
// ones, for PulseOn, Pulses times.
func resetPulses(e *env) {
	for i := range e.size.Pulses {
		if i > 0 {
			time.Sleep(e.size.PulseOff)
		}
		for _, p := range e.c.proxies {
			p.Refuse(true)
			p.Reset()
		}
		time.Sleep(e.size.PulseOn)
		for _, p := range e.c.proxies {
			p.Refuse(false)
		}
	}
}

// receiverNode returns the node that holds the checker's session.
func (e *env) receiverNode() *node {
	e.tb.Helper()
	id := e.tr.serverOfChecker()
	n := e.c.node(id)
	if n == nil {
		e.tb.Fatalf("chaos: the checker is on %q, not on a node of the case", id)
	}
	return n
}

// restart starts node n again, on its address.
func (e *env) restart(n *node) {
	e.tb.Helper()
	if err := n.start(); err != nil {
		e.tb.Fatalf("chaos: restarting: %v", err)
	}
}

// killReceiver kills the checker's node, and starts it again after Down.
func killReceiver(e *env) {
	n := e.receiverNode()
	e.tb.Logf("killing node %s, the checker's", n.id)
	n.kill()
	time.Sleep(e.size.Down)
	e.restart(n)
}

// rollingRestart drains each node in turn and starts it again.
func rollingRestart(e *env) {
	for i, n := range e.c.nodes {
		if i > 0 {
			time.Sleep(e.size.RollPause)
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.size.DrainWindow+e.size.DrainJitter+20*time.Second)
		err := n.drain(ctx)
		cancel()
		if err != nil {
			e.tb.Logf("draining node %s: %v", n.id, err)
		}
		e.restart(n)
	}
}

// killNATSServer kills the NATS server that the checker's node uses, and
// starts it again after Down.
func killNATSServer(e *env) {
	n := e.receiverNode()
	url := n.natsURL()
	for _, s := range e.c.nats {
		if s.URL() == url {
			e.tb.Logf("killing NATS server %s, node %s's", s.Name(), n.id)
			s.Shutdown()
			time.Sleep(e.size.Down)
			s.Restart(e.tb)
			return
		}
	}
	e.tb.Fatalf("chaos: node %s uses NATS at %q, not a server of the case", n.id, url)
}

// natsDown stops the NATS server for NATSDown and starts it again.
func natsDown(e *env) {
	s := e.c.nats[0]
	s.Shutdown()
	time.Sleep(e.size.NATSDown)
	s.Restart(e.tb)
}

package server_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// The tether_ series move with the sessions they describe.
func TestMetricsMoveDuringASession(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	n := startNode(t, server.WithRegisterer(reg))
	c := n.dial(t, "")
	w := c.open(&tetherv1.Hello{ClientId: "m"})
	if got := gauge(t, reg, "tether_sessions", "state", "connected"); got != 1 {
		t.Fatalf("connected sessions = %v", got)
	}
	c.send(toTopic(1, "t", "x"))
	c.ackFrame()
	if got := gauge(t, reg, "tether_frames_received_total", "type", "message"); got != 1 {
		t.Fatalf("message frames received = %v", got)
	}
	c.cancel()
	waitFor(t, func() bool { return n.state(t, w.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
	if got := gauge(t, reg, "tether_sessions", "state", "detached"); got != 1 {
		t.Fatalf("detached sessions = %v", got)
	}
	if got := gauge(t, reg, "tether_sessions", "state", "connected"); got != 0 {
		t.Fatalf("connected sessions after the break = %v", got)
	}
	c2 := n.dial(t, "")
	c2.open(resumeHello(w, 0))
	if got := gauge(t, reg, "tether_resumes_total", "outcome", "resumed"); got != 1 {
		t.Fatalf("resumes = %v", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
}

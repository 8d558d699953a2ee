package client

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the session's optional tether_client_ series.
type metrics struct {
	states     *prometheus.GaugeVec
	reconnects prometheus.Counter
	deadLinks  prometheus.Counter
	goAways    prometheus.Counter
	rtt        prometheus.Histogram
	sent       prometheus.Counter
	received   prometheus.Counter
	duplicates prometheus.Counter
	refused    prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tether_client_state",
			Help: "1 for the session's current state (connecting, connected, reconnecting, closed), 0 for the others."}, []string{"state"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_reconnects_total",
			Help: "Times the session lost its stream and reconnected."}),
		deadLinks: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_dead_links_total",
			Help: "Streams ended because nothing arrived for the server's dead_after."}),
		goAways: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_go_aways_total",
			Help: "GoAway frames received."}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tether_client_rtt_seconds",
			Help: "Round-trip times measured by the session's pings.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_messages_sent_total",
			Help: "Message frames written (re-sends included)."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_messages_received_total",
			Help: "Messages received, duplicates excluded."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_duplicates_total",
			Help: "Replayed messages dropped because they had been received before."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_messages_refused_total",
			Help: "Sent messages the server could not handle for now (its broker was unreachable, the route failed); each is re-sent after a delay."}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.states, m.reconnects, m.deadLinks, m.goAways, m.rtt, m.sent, m.received, m.duplicates, m.refused} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("tether/client: WithRegisterer: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) state(s State) {
	for _, st := range []State{StateConnecting, StateConnected, StateReconnecting, StateClosed} {
		v := 0.0
		if st == s {
			v = 1
		}
		m.states.WithLabelValues(st.String()).Set(v)
	}
	if s == StateReconnecting {
		m.reconnects.Inc()
	}
}

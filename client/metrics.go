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
	failed     *prometheus.CounterVec
	retries    prometheus.Counter
	lost       *prometheus.CounterVec
	interval   prometheus.Gauge
	steps      *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tether_client_state",
			Help: "1 for the session's current state (connecting, connected, reconnecting, closed, suspended), 0 for the others."}, []string{"state"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_reconnects_total",
			Help: "Times the session lost its stream and reconnected."}),
		deadLinks: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_dead_links_total",
			Help: "Streams ended because nothing arrived for the dead-after (Welcome.dead_after, or sooner the RTT-derived timeout)."}),
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
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_client_messages_failed_total",
			Help: "Sent messages lost for good, by reason: the server's refusal code (after retries for retryable codes), dropped (DropOldest) or closed (the session closed before the server acked them)."}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_client_message_retries_total",
			Help: "Re-sends of messages the server refused with a retryable code."}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_client_messages_lost_total",
			Help: "Server messages that will never arrive (those of the server's lost ranges the session had not received), by cause: gap (a Gap frame: the outbound log overflowed while connected), resume (Welcome.lost) or take_over (Welcome.took_over.dropped)."}, []string{"cause"}),
		interval: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tether_client_heartbeat_interval_seconds",
			Help: "The heartbeat interval the session uses (granted in Welcome; the adaptive heartbeat moves it)."}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_client_heartbeat_steps_total",
			Help: "Moves of the adaptive heartbeat, by reason: confirmed (a longer interval is probed), lost (back to the last good one) or revoked (the good one failed twice: the search restarts lower)."}, []string{"reason"}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.states, m.reconnects, m.deadLinks, m.goAways, m.rtt, m.sent, m.received, m.duplicates, m.failed, m.retries, m.lost, m.interval, m.steps} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("tether/client: WithRegisterer: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) state(s State) {
	for _, st := range []State{StateConnecting, StateConnected, StateReconnecting, StateClosed, StateSuspended} {
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

// heartbeat counts a step of the adaptive heartbeat.
func (m *metrics) heartbeat(step HeartbeatStep) {
	m.interval.Set(step.Interval.Seconds())
	m.steps.WithLabelValues(step.Reason).Inc()
}

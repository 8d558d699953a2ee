package nats

import "github.com/prometheus/client_golang/prometheus"

var (
	panicsDesc = prometheus.NewDesc("tether_nats_broker_panics_total",
		"Panics the NATS broker recovered from in its background goroutines (each is logged with its stack at error level).", nil, nil)
	lostDesc = prometheus.NewDesc("tether_nats_broker_lost_total",
		"Messages a node queued to a session but could not store before the session moved to another node, and could not hand on to it (each loss is logged at error level).", nil, nil)
)

var _ prometheus.Collector = (*Broker)(nil)

// Describe implements [prometheus.Collector]: register the broker (with
// a server's registerer, say) to export its series.
func (b *Broker) Describe(ch chan<- *prometheus.Desc) {
	ch <- panicsDesc
	ch <- lostDesc
}

// Collect implements [prometheus.Collector]. The broker exports
// tether_nats_broker_panics_total, the panics it recovered from in its
// background goroutines: anything above zero is a bug to report; and
// tether_nats_broker_lost_total, the messages it lost because a session
// moved before they were stored and they could not be handed on (see the
// package documentation, # Failures).
func (b *Broker) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(b.panics.Load()))
	ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.CounterValue, float64(b.lost.Load()))
}

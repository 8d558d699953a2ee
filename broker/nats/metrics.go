package nats

import "github.com/prometheus/client_golang/prometheus"

var panicsDesc = prometheus.NewDesc("tether_nats_broker_panics_total",
	"Panics the NATS broker recovered from in its background goroutines (each is logged with its stack at error level).", nil, nil)

var _ prometheus.Collector = (*Broker)(nil)

// Describe implements [prometheus.Collector]: register the broker (with
// a server's registerer, say) to export its series.
func (b *Broker) Describe(ch chan<- *prometheus.Desc) { ch <- panicsDesc }

// Collect implements [prometheus.Collector]. The broker exports
// tether_nats_broker_panics_total, the panics it recovered from in its
// background goroutines: anything above zero is a bug to report.
func (b *Broker) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(b.panics.Load()))
}

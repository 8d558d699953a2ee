package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// metrics are the server's tether_ series. Per-frame counters are resolved
// once, so counting a frame is one atomic add.
type metrics struct {
	sessions         []prometheus.Collector // tether_sessions{state}, read from the server at scrape time
	streams          prometheus.Gauge
	in, out          *prometheus.CounterVec
	inByType         map[string]prometheus.Counter
	outByType        map[string]prometheus.Counter
	heartbeatsSent   prometheus.Counter
	heartbeatsMissed prometheus.Counter
	deadPeers        prometheus.Counter
	detection        prometheus.Histogram
	rtt              prometheus.Histogram
	resumes          *prometheus.CounterVec
	opened           prometheus.Counter
	replayed         prometheus.Counter
	dedupeDrops      prometheus.Counter
	pipelined        prometheus.Counter
	notHandled       *prometheus.CounterVec
	slowConsumers    prometheus.Counter
	goAways          *prometheus.CounterVec
	takeovers        prometheus.Counter
	adopted          prometheus.Counter
	expired          prometheus.Counter
	overflowDropped  *prometheus.CounterVec // by policy
	overflowRefused  *prometheus.CounterVec // by policy
	drainRemaining   prometheus.Gauge
	pacedReads       prometheus.Counter
	livenessMetrics  // adaptive heartbeats and suspended sessions (suspend.go)
}

// sessionGauges reports the node's sessions by state when scraped.
func sessionGauges(srv *Server) []prometheus.Collector {
	const help = "Sessions on this node by state: connected (a stream carries it), detached (waiting for a resume) or suspended (its client suspended it: waiting for a resume for the suspend window)."
	connected := func() float64 { return float64(srv.live.Load()) }
	detached := func() float64 {
		srv.mu.RLock()
		n := len(srv.sessions)
		srv.mu.RUnlock()
		return float64(max(int64(n)-srv.live.Load()-srv.suspended.Load(), 0))
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tether_sessions", Help: help, ConstLabels: prometheus.Labels{"state": "connected"}}, connected),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tether_sessions", Help: help, ConstLabels: prometheus.Labels{"state": "detached"}}, detached),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tether_sessions", Help: help, ConstLabels: prometheus.Labels{"state": "suspended"}}, func() float64 { return float64(srv.suspended.Load()) }),
	}
}

func newMetrics() *metrics {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tether_streams",
			Help: "Open Connect streams."}),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_frames_received_total",
			Help: "Frames received from clients, by frame type."}, []string{"type"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_frames_sent_total",
			Help: "Frames sent to clients, by frame type."}, []string{"type"}),
		heartbeatsSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_heartbeats_sent_total",
			Help: "Pings the server sent because a stream was write-idle for its interval."}),
		heartbeatsMissed: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_heartbeats_missed_total",
			Help: "Heartbeats a stream missed: nothing received for k intervals and a half counts as the k-th."}),
		deadPeers: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_dead_peers_total",
			Help: "Streams ended because nothing arrived for their dead-after (interval × misses + grace, or the RTT-derived timeout)."}),
		detection: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tether_dead_peer_detection_seconds",
			Help:    "Silence before a stream was declared dead: the heartbeat detection time (its dead-after, plus timer slack).",
			Buckets: []float64{1, 2.5, 5, 7.5, 10, 15, 30, 45, 60, 90, 120, 300, 900}}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tether_rtt_seconds",
			Help:    "Round-trip time measured by server pings.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_resumes_total",
			Help: "Resume attempts by outcome (resumed, resumed_with_gap, unknown_session, expired, principal_mismatch, closed, seq_mismatch)."}, []string{"outcome"}),
		opened: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_sessions_opened_total",
			Help: "Fresh sessions created (including after a failed resume)."}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_replayed_messages_total",
			Help: "Unacknowledged messages re-sent after a resume."}),
		pipelined: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_pipelined_messages_total",
			Help: "Client messages routed through the broker's pipeline: the reader went on without waiting for their route (shared brokers that pipeline, NATS)."}),
		dedupeDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_dedupe_drops_total",
			Help: "Messages dropped as duplicates, by seq or idempotency key."}),
		notHandled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_messages_not_handled_total",
			Help: "Client messages answered with an Error frame instead of being handled: refused (a retryable failure, such as the broker being unreachable; the client re-sends it) or failed (a final one, such as an unknown target; the client reports it)."}, []string{"outcome"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_slow_consumer_cuts_total",
			Help: "Streams cut off because their session's outbound log was full (overflow policy disconnect)."}),
		goAways: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_go_aways_total",
			Help: "GoAway frames sent, by reason."}, []string{"reason"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_takeovers_total",
			Help: "Streams or sessions replaced by a newer one (same session or client id)."}),
		adopted: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_sessions_adopted_total",
			Help: "Sessions taken over from another node to be resumed here (shared broker only)."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_sessions_expired_total",
			Help: "Detached sessions whose resume window ended."}),
		overflowDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_outbound_log_drops_total",
			Help: "Messages dropped from full outbound logs, by overflow policy: each is reported to its client (a gap frame, or the lost range on resume)."}, []string{"policy"}),
		overflowRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_outbound_refused_total",
			Help: "Messages refused because their one recipient's outbound log was full, by overflow policy (backpressure): each sender was told RESOURCE_EXHAUSTED and retries."}, []string{"policy"}),
		drainRemaining: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tether_drain_remaining_sessions",
			Help: "Streams still open during a drain."}),
		pacedReads: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_paced_reads_total",
			Help: "Reads the server delayed because a stream was above its frame rate (Limits.max_frames_per_second): pacing, not a cut."}),
	}
	for _, p := range []OverflowPolicy{OverflowBackpressure, OverflowDropOldest, OverflowDisconnect} {
		m.overflowDropped.WithLabelValues(p.String()) // exported at 0 from the start
	}
	m.overflowRefused.WithLabelValues(OverflowBackpressure.String())
	m.livenessMetrics = newLivenessMetrics()
	m.inByType = resolve(m.in, (&tetherv1.ConnectRequest{}).ProtoReflect().Descriptor().Oneofs().ByName("frame").Fields())
	m.outByType = resolve(m.out, (&tetherv1.ConnectResponse{}).ProtoReflect().Descriptor().Oneofs().ByName("frame").Fields())
	return m
}

func resolve(v *prometheus.CounterVec, fields protoreflect.FieldDescriptors) map[string]prometheus.Counter {
	out := make(map[string]prometheus.Counter, fields.Len())
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		out[name] = v.WithLabelValues(name)
	}
	return out
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range append(m.sessions, m.streams, m.in, m.out, m.heartbeatsSent, m.heartbeatsMissed,
		m.deadPeers, m.detection, m.rtt, m.resumes, m.opened, m.replayed, m.dedupeDrops, m.pipelined, m.notHandled, m.slowConsumers, m.goAways, m.takeovers, m.adopted,
		m.expired, m.overflowDropped, m.overflowRefused, m.drainRemaining, m.pacedReads, m.heartbeatChanges, m.suspends, m.suspendedMessages) {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) framesIn(f *tetherv1.ConnectRequest) {
	var t string
	switch f.GetFrame().(type) {
	case *tetherv1.ConnectRequest_Hello:
		t = "hello"
	case *tetherv1.ConnectRequest_Ping:
		t = "ping"
	case *tetherv1.ConnectRequest_Pong:
		t = "pong"
	case *tetherv1.ConnectRequest_Message:
		t = "message"
	case *tetherv1.ConnectRequest_Ack:
		t = "ack"
	case *tetherv1.ConnectRequest_Subscribe:
		t = "subscribe"
	case *tetherv1.ConnectRequest_Unsubscribe:
		t = "unsubscribe"
	case *tetherv1.ConnectRequest_Close:
		t = "close"
	case *tetherv1.ConnectRequest_SetHeartbeat:
		t = "set_heartbeat"
	case *tetherv1.ConnectRequest_Suspend:
		t = "suspend"
	default:
		return
	}
	m.inByType[t].Inc()
}

func (m *metrics) framesOut(f *tetherv1.ConnectResponse) {
	var t string
	switch f.GetFrame().(type) {
	case *tetherv1.ConnectResponse_Welcome:
		t = "welcome"
	case *tetherv1.ConnectResponse_Ping:
		t = "ping"
	case *tetherv1.ConnectResponse_Pong:
		t = "pong"
	case *tetherv1.ConnectResponse_Message:
		t = "message"
	case *tetherv1.ConnectResponse_Ack:
		t = "ack"
	case *tetherv1.ConnectResponse_GoAway:
		t = "go_away"
	case *tetherv1.ConnectResponse_Error:
		t = "error"
	case *tetherv1.ConnectResponse_Gap:
		t = "gap"
	default:
		return
	}
	m.outByType[t].Inc()
}

// messagesOut counts a frame of n messages sent: a message frame, or a
// batch.
func (m *metrics) messagesOut(n int) {
	if n == 1 {
		m.outByType["message"].Inc()
	} else {
		m.outByType["batch"].Inc()
	}
}

func reasonLabel(r tetherv1.GoAwayReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "GO_AWAY_REASON_"))
}

func resumeLabel(r tetherv1.ResumeStatus) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "RESUME_STATUS_"))
}

package nats

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of [Options].
const (
	DefaultPrefix        = "tether"
	DefaultRetention     = 10 * time.Minute
	DefaultRecordTTL     = 24 * time.Hour
	DefaultTimeout       = 5 * time.Second
	DefaultHeartbeat     = time.Second
	DefaultMaxLogEntries = 16384
)

// Options configure a [Broker]. The zero value works for one NATS server
// with JetStream.
type Options struct {
	// Prefix starts every subject, and (upper-cased) every stream name, so
	// that several tether clusters can share one NATS system. Default
	// "tether". Letters, digits, '-' and '_' only.
	Prefix string
	// Replicas is the JetStream replication factor of the streams: 1 for
	// one NATS server, 3 for a cluster that must survive losing a server.
	// Default 1.
	Replicas int
	// MemoryStorage keeps the streams in memory instead of files: faster,
	// but a NATS server restart loses what only it held.
	MemoryStorage bool
	// Retention is how long log entries and parked messages are kept at
	// most. It must be at least the servers' resume window. Default 10m.
	Retention time.Duration
	// RecordTTL is how long a connected session's record is kept after its
	// last update. Default 24h.
	RecordTTL time.Duration
	// Timeout bounds each NATS request the broker makes for a caller whose
	// context has no earlier deadline. Default 5s.
	Timeout time.Duration
	// Heartbeat is how often a Publish or Evict waiting for the node that
	// holds its target checks that the node lives, by a request on the
	// node's liveness subject that its NATS connection answers at once: a
	// call to a node that died (or hangs) fails after about one to two
	// Heartbeats, with an error matching broker.ErrUnavailable, instead of
	// after Timeout. Default 1s; at most Timeout.
	Heartbeat time.Duration
	// MaxLogEntries caps each session's log in JetStream, whatever the
	// capacity servers ask for; it must be at least the servers' outbound
	// log. Default 16384.
	MaxLogEntries int64
	// Logger receives the broker's own events. Default slog.Default().
	Logger *slog.Logger
	// Durability says where a session's outbound log lives, and so what
	// a resume on another node keeps: DurabilityCluster (the default) or
	// DurabilityNode. See the package documentation, "Durability".
	Durability Durability
}

func (o Options) withDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	for _, r := range o.Prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return o, fmt.Errorf("tether/broker/nats: prefix %q: use letters, digits, '-' and '_' only", o.Prefix)
		}
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return o, fmt.Errorf("tether/broker/nats: %d replicas: use 1 to 5", o.Replicas)
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.RecordTTL == 0 {
		o.RecordTTL = DefaultRecordTTL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = min(DefaultHeartbeat, o.Timeout)
	}
	if o.Heartbeat < 0 || o.Heartbeat > o.Timeout {
		return o, fmt.Errorf("tether/broker/nats: Heartbeat %v: use a positive duration no longer than Timeout (%v)", o.Heartbeat, o.Timeout)
	}
	if o.MaxLogEntries == 0 {
		o.MaxLogEntries = DefaultMaxLogEntries
	}
	if o.Retention < time.Second || o.RecordTTL < time.Second || o.Timeout <= 0 || o.MaxLogEntries < 1 {
		return o, errors.New("tether/broker/nats: Retention and RecordTTL must be at least 1s, Timeout and MaxLogEntries positive")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	d, err := ParseDurability(string(o.Durability))
	if err != nil {
		return o, err
	}
	o.Durability = d
	return o, nil
}

// ConnectOptions are the nats.go options Connect always sets: no echo (the
// broker delivers its own node's messages itself), reconnecting forever, no
// buffering of publishes while disconnected (a log append must fail at
// once, not land minutes later after another node took the session over),
// and a connection name. Options passed to Connect come after them and may
// override all but NoEcho. A connection given to [New] should use them
// too.
func ConnectOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.NoEcho(),
		nats.ReconnectBufSize(-1),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
	}
}

package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/internal/loopback"
	"github.com/tetherhq/tether/profile"
)

// Option configures a [Session]. Options are applied in order by [New]; an
// invalid value makes New fail with an error that names the option.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// FullPolicy says what Send does when the send buffer is full.
type FullPolicy int

// The send-buffer policies.
const (
	// Block makes Send wait, until its context ends, for room in the buffer
	// (the server acks what was sent). The default.
	Block FullPolicy = iota
	// FailFast makes Send return ErrBufferFull at once.
	FailFast
	// DropOldest makes room by dropping the oldest message not yet written
	// to any stream; SendWait callers waiting for it get ErrDropped.
	DropOldest
)

// String returns "block", "fail_fast" or "drop_oldest".
func (p FullPolicy) String() string {
	switch p {
	case Block:
		return "block"
	case FailFast:
		return "fail_fast"
	case DropOldest:
		return "drop_oldest"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(p))
}

// Pick says how the session chooses among healthy backends.
type Pick int

// The backend choices.
const (
	// PickRandom picks uniformly among healthy backends. The default.
	PickRandom Pick = iota
	// PickLeastRTT picks the healthy backend with the lowest measured
	// round-trip time; backends not measured yet count as fastest, so every
	// backend gets measured.
	PickLeastRTT
)

// config is the validated configuration of a Session.
type config struct {
	addrs       []string
	dnsName     string
	target      string
	clientID    string
	topics      []string
	metadata    map[string]string
	profile     profile.Profile
	heartbeat   time.Duration
	backoff     backoff.Config
	pick        Pick
	sendBuffer  int
	fullPolicy  FullPolicy
	dialOptions []grpc.DialOption
	token       string
	tls         *tls.Config // nil: plaintext
	insecure    bool        // a token may travel in plaintext beyond loopback
	logger      *slog.Logger
	registerer  prometheus.Registerer
	onState     func(StateChange)
	onRTT       func(backend string, rtt time.Duration)
	openTimeout time.Duration
	healthWait  time.Duration
	sendRetry   SendRetry
	onSendError func(Message, error)
	onLoss      func(Loss)
	adapt       adaptConfig // the adaptive heartbeat (adaptive.go)
	// The receive window asked for in Hello (see WithReceiveWindow).
	windowMessages, windowBytes int
	maxBatch                    int // see WithMaxBatch
}

func defaultConfig() *config {
	return &config{
		profile:     profile.Default(),
		backoff:     backoff.DefaultConfig(),
		sendBuffer:  1024,
		logger:      slog.New(slog.DiscardHandler),
		openTimeout: 10 * time.Second,
		healthWait:  500 * time.Millisecond,
		sendRetry:   DefaultSendRetry(),

		windowMessages: DefaultReceiveWindowMessages,
		windowBytes:    DefaultReceiveWindowBytes,
		maxBatch:       DefaultMaxBatch,
	}
}

func (c *config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	n := 0
	for _, set := range []bool{len(c.addrs) > 0, c.dnsName != "", c.target != ""} {
		if set {
			n++
		}
	}
	check(n == 1, "give exactly one of WithAddrs, WithDNS or WithTarget (got %d)", n)
	check(len(c.clientID) <= 256, "WithClientID: the id is longer than 256 bytes")
	check(c.sendBuffer > 0, "WithSendBuffer: the size %d must be positive", c.sendBuffer)
	check(c.fullPolicy >= Block && c.fullPolicy <= DropOldest, "WithSendBuffer: unknown policy %v", c.fullPolicy)
	check(c.heartbeat >= 0, "WithHeartbeat: %v must not be negative", c.heartbeat)
	check(c.openTimeout > 0, "WithOpenTimeout: %v must be positive", c.openTimeout)
	check(c.healthWait >= 0, "WithHealthWait: %v must not be negative", c.healthWait)
	check(c.windowMessages >= 1 && uint64(c.windowMessages) <= math.MaxUint32, "WithReceiveWindow: %d messages: give 1 to %d (the default is %d)",
		c.windowMessages, uint32(math.MaxUint32), DefaultReceiveWindowMessages)
	check(c.maxBatch >= 0 && c.maxBatch <= math.MaxUint32, "WithMaxBatch: %d: give 0 (no batches) to %d (the default is %d)",
		c.maxBatch, uint32(math.MaxUint32), DefaultMaxBatch)
	check(c.windowBytes >= 1 && uint64(c.windowBytes) <= math.MaxUint32, "WithReceiveWindow: %d bytes: give 1 to %d (the default is %d, 4 MiB)",
		c.windowBytes, uint32(math.MaxUint32), DefaultReceiveWindowBytes)
	if addr := c.plaintextTokenTarget(); addr != "" {
		errs = append(errs, fmt.Errorf("WithToken: refusing to send the token in plaintext to %s, beyond loopback: "+
			"add WithTLS (or WithTLSFiles), or WithInsecure if the network encrypts for you", addr))
	}
	if err := c.backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("WithBackoff: %w", err))
	}
	if err := c.sendRetry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("WithSendRetry: %w", err))
	}
	if err := c.profile.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("WithProfile: %w", err))
	}
	return errors.Join(errs...)
}

// WithAddrs sets a static list of backends ("host:port"). The session
// watches each one's health and picks among the healthy ones.
func WithAddrs(addrs ...string) Option {
	return optionFunc(func(c *config) error { c.addrs = append(c.addrs, addrs...); return nil })
}

// WithDNS names the backends by a DNS name ("tether.example.com:7070").
// The name is resolved again before every connection attempt, so new
// backends are found without a restart (gRPC's own DNS resolver does not
// poll).
func WithDNS(hostport string) Option {
	return optionFunc(func(c *config) error { c.dnsName = hostport; return nil })
}

// WithTarget uses any gRPC resolver target ("dns:///name:7070",
// "xds:///…", a registered custom scheme). gRPC balances among its
// addresses with round_robin and skips those whose grpc.health.v1 status
// for tether.v1.TetherService is not SERVING.
func WithTarget(target string) Option {
	return optionFunc(func(c *config) error { c.target = target; return nil })
}

// WithClientID sets the stable client id sent in Hello. A newer session
// with the same client id takes over the older one on the server. The
// server scopes idempotency keys to it, so set one for effectively-once
// delivery across sessions: without it, a message re-sent in a fresh
// session (after a failed resume) may arrive twice.
func WithClientID(id string) Option {
	return optionFunc(func(c *config) error { c.clientID = id; return nil })
}

// WithTopics subscribes the session to topics from its first Hello.
func WithTopics(topics ...string) Option {
	return optionFunc(func(c *config) error { c.topics = append(c.topics, topics...); return nil })
}

// WithMetadata sets the labels sent in Hello, shown to operators.
func WithMetadata(md map[string]string) Option {
	return optionFunc(func(c *config) error { c.metadata = md; return nil })
}

// WithProfile sets the liveness profile: the heartbeat interval asked for,
// gRPC keepalive and TCP keepalive. It should match the servers'. The
// default is [profile.Default].
func WithProfile(p profile.Profile) Option {
	return optionFunc(func(c *config) error { c.profile = p; return nil })
}

// WithHeartbeat asks the server for this heartbeat interval instead of the
// profile's. The server grants one within its bounds.
func WithHeartbeat(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.heartbeat = d; return nil })
}

// WithBackoff sets the reconnect backoff. The default is
// [backoff.DefaultConfig].
func WithBackoff(b backoff.Config) Option {
	return optionFunc(func(c *config) error { c.backoff = b; return nil })
}

// WithPick sets how a backend is chosen among healthy ones. The default is
// PickRandom.
func WithPick(p Pick) Option {
	return optionFunc(func(c *config) error { c.pick = p; return nil })
}

// WithSendBuffer bounds the messages Send holds (queued during a
// disconnect, or sent and not yet acknowledged) and sets what Send does
// when it is full. The default is 1024 and Block.
func WithSendBuffer(n int, policy FullPolicy) Option {
	return optionFunc(func(c *config) error { c.sendBuffer, c.fullPolicy = n, policy; return nil })
}

// WithDialOptions adds grpc.DialOptions, for example transport
// credentials. Without credentials the session dials in plaintext.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *config) error { c.dialOptions = append(c.dialOptions, opts...); return nil })
}

// WithToken sends "authorization: bearer TOKEN" on every call. New refuses
// a token that would travel in plaintext beyond loopback: add [WithTLS],
// [WithTLSFiles] or, when the network encrypts, [WithInsecure].
func WithToken(token string) Option {
	return optionFunc(func(c *config) error { c.token = token; return nil })
}

// plaintextTokenTarget is the first backend a token would reach in
// plaintext beyond loopback, or "" when there is none: without a token,
// with TLS, with WithInsecure, or with only loopback addresses ("localhost"
// and loopback IPs; host names other than localhost count as beyond).
func (c *config) plaintextTokenTarget() string {
	if c.token == "" || c.tls != nil || c.insecure {
		return ""
	}
	targets := c.addrs
	switch {
	case c.dnsName != "":
		targets = []string{c.dnsName}
	case c.target != "":
		_, endpoint, _ := strings.Cut(c.target, ":///")
		targets = []string{endpoint}
	}
	for _, t := range targets {
		if !loopback.Literal(t) {
			return t
		}
	}
	return ""
}

// WithTLS dials every backend over TLS with a clone of cfg. A nil cfg
// verifies the servers against the system's roots, by the host name of
// each address; set cfg.ServerName when the name in the certificate is
// another, cfg.RootCAs for a private CA, and cfg.Certificates for mTLS (or
// use [WithTLSFiles]). Without WithTLS (or credentials in
// [WithDialOptions]) the session dials in plaintext.
func WithTLS(cfg *tls.Config) Option {
	return optionFunc(func(c *config) error {
		if cfg == nil {
			cfg = &tls.Config{}
		}
		c.tls = cfg.Clone()
		if c.tls.MinVersion == 0 {
			c.tls.MinVersion = tls.VersionTLS12
		}
		return nil
	})
}

// WithTLSFiles dials every backend over TLS, verifying servers against the
// PEM CA certificates in caFile (the system's roots when caFile is empty)
// and presenting the PEM client certificate certFile with its key keyFile
// (mTLS; none when both are empty). New fails with an error naming the file
// that cannot be read. See [NewTLSConfig] to adjust the result.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return optionFunc(func(c *config) error {
		cfg, err := newTLSConfig(caFile, certFile, keyFile)
		if err != nil {
			return fmt.Errorf("WithTLSFiles: %w", err)
		}
		c.tls = cfg
		return nil
	})
}

// WithInsecure lets WithToken send the token in plaintext beyond loopback:
// New refuses that by default. Use it only when the network in between
// encrypts (a service mesh's mTLS, a VPN).
func WithInsecure() Option {
	return optionFunc(func(c *config) error { c.insecure = true; return nil })
}

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: the logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithRegisterer registers the session's tether_client_ metrics with r.
// One registry takes one session's metrics; for several sessions, give each
// its own labels with prometheus.WrapRegistererWith.
func WithRegisterer(r prometheus.Registerer) Option {
	return optionFunc(func(c *config) error { c.registerer = r; return nil })
}

// WithOnState calls f on every state change, in order, on a goroutine of
// its own: f may block or call the Session without stalling it.
func WithOnState(f func(StateChange)) Option {
	return optionFunc(func(c *config) error { c.onState = f; return nil })
}

// WithOnRTT calls f with every round-trip time measured by the session's
// pings, in order with the state changes, on the same goroutine as
// WithOnState's callback.
func WithOnRTT(f func(backend string, rtt time.Duration)) Option {
	return optionFunc(func(c *config) error { c.onRTT = f; return nil })
}

// WithOpenTimeout bounds one connection attempt: dialing, Hello and
// Welcome. The default is 10s.
func WithOpenTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.openTimeout = d; return nil })
}

// WithHealthWait bounds how long the session's first pick waits for the
// grpc.health.v1 status of every backend (WithAddrs or WithDNS with
// several addresses), so that sessions spread over all the healthy ones
// (see WithPick) instead of crowding onto whichever answered first. A
// backend still silent then is passed over if another is SERVING. Later
// picks wait as long at most, until the health of any backend is known.
// Zero picks at once, among backends whose health may be unknown. The
// default is 500ms; on a network where a new connection and one RPC take
// longer, raise it.
func WithHealthWait(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.healthWait = d; return nil })
}

// The default receive window (see WithReceiveWindow): at 64-byte
// messages and a 1 ms round trip, 1024 messages carry about a million
// messages a second on one stream, and 4 MiB keeps large messages
// flowing while bounding what one session holds unread.
const (
	DefaultReceiveWindowMessages = 1024
	DefaultReceiveWindowBytes    = 4 << 20
)

// WithReceiveWindow sets the receive window the session asks for in
// Hello: at most messages server messages, and payload bytes (the sum of
// their payload sizes), sent on a stream and not yet acknowledged. The
// server clamps it into its own bounds (Welcome.limits.max_outbound_queue
// and max_outbound_bytes) and the window it grants
// (Welcome.receive_window) is the one that counts; a single message
// larger than the byte window still comes, alone.
//
// The session acknowledges what the application took (Receive, or a
// Request's reply): as soon as half the granted window, in messages or in
// bytes, was taken and not yet acknowledged; otherwise with the next frame
// the session sends anyway (a ping, a message), and 2s after the first such
// message at the latest. So a reader that keeps up never stalls, and the
// server holds back only what a slow reader has not taken. One stream
// carries at most about a window per round trip: raise it on a link with
// a long round trip. Both numbers must be between 1 and 4294967295. The
// default is 1024 messages and 4 MiB.
func WithReceiveWindow(messages, bytes int) Option {
	return optionFunc(func(c *config) error { c.windowMessages, c.windowBytes = messages, bytes; return nil })
}

// DefaultMaxBatch is the batch size a session asks for by default (see
// WithMaxBatch).
const DefaultMaxBatch = 128

// WithMaxBatch sets the most messages the session takes, and sends, in one
// batch frame (frames.proto "Batches"); 0 turns batches off. The server
// clamps it (tetherd: to 128) and the size it grants (Welcome.max_batch)
// is the one that counts, both ways; a server that predates batches
// grants none. A batch carries what waits at once: when the writer, or
// the server's, finds several messages queued, they go in one frame, one
// gRPC message instead of one each, and no message waits for a batch to
// fill. The application sees each message as before. Turning batches off
// is for comparing, or for a server behind a proxy that inspects frames;
// the default is 128.
func WithMaxBatch(n int) Option {
	return optionFunc(func(c *config) error { c.maxBatch = n; return nil })
}

func newConfig(opts []Option) (*config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if err := o.apply(c); err != nil {
			return nil, fmt.Errorf("tether/client: %w", err)
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("tether/client: invalid options: %w", err)
	}
	return c, nil
}

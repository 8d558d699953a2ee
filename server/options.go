package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	"github.com/tetherhq/tether/profile"
)

// Option configures a [Server]. Options are applied in order by [New]; an
// invalid value makes New fail with an error that names the option.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// Defaults of the options, exported for tools that present them (tetherd's
// flags); New applies them when an option is not given.
const (
	DefaultResumeWindow     = 2 * time.Minute
	DefaultMaxSessions      = 100_000
	DefaultMaxMessageBytes  = 1 << 20
	DefaultMaxOutboundQueue = 4096
	DefaultMaxOutboundBytes = 16 << 20
	DefaultOverflowPolicy   = OverflowBackpressure
	DefaultDrainWindow      = 10 * time.Second
	DefaultDrainRate        = 1000.0
	DefaultRetryJitter      = 5 * time.Second
)

// The default frame rate of a stream (see [WithFrameRate]). It is chosen so
// that pacing never slows one honest stream: raw grpc-go, a handler that
// only reads and a client that sends small frames flat out, reads 1.07 to
// 1.16 million frames per second on one stream over loopback on a 2-vCPU
// Xeon (BenchmarkStreamFrames/raw in flow_bench_test.go, three runs of 2 s),
// and no client reaches the default, more than twice that. The burst is a
// tenth of a second at the rate. What the rate guards against is a client
// on a much faster machine making one stream's reader spin (a ping or
// subscribe flood); it is paced, never cut.
const (
	DefaultFrameRate  = 2_500_000
	DefaultFrameBurst = 250_000
)

// config is the validated configuration of a Server.
type config struct {
	serverID         string
	profile          profile.Profile
	handler          Handler
	pipelining       bool
	authz            Authorizer
	frameRate        rate.Limit
	frameBurst       int
	broker           broker.Broker
	logger           *slog.Logger
	registerer       prometheus.Registerer
	principal        func(context.Context) string
	resumeWindow     time.Duration
	maxSessions      int
	maxMessageBytes  int
	maxOutboundQueue int
	maxOutboundBytes int
	overflow         OverflowPolicy
	maxTopics        int
	dedupeWindow     time.Duration
	helloTimeout     time.Duration
	recorderSize     int
	drainWindow      time.Duration
	drainRate        float64
	retryJitter      time.Duration
	oneSessionPerID  bool
	maxSuspendWindow time.Duration // see WithMaxSuspendWindow (suspend.go)
}

// defaultConfig returns a fresh default configuration.
func defaultConfig() *config {
	host, _ := os.Hostname()
	return &config{
		serverID:         host + "-" + randomID(4),
		profile:          profile.Default(),
		logger:           slog.New(slog.DiscardHandler),
		principal:        func(context.Context) string { return "" },
		resumeWindow:     DefaultResumeWindow,
		maxSessions:      DefaultMaxSessions,
		maxMessageBytes:  DefaultMaxMessageBytes,
		maxOutboundQueue: DefaultMaxOutboundQueue,
		pipelining:       true,
		maxOutboundBytes: DefaultMaxOutboundBytes,
		overflow:         DefaultOverflowPolicy,
		maxTopics:        256,
		dedupeWindow:     10 * time.Minute,
		helloTimeout:     10 * time.Second,
		recorderSize:     64,
		drainWindow:      DefaultDrainWindow,
		drainRate:        DefaultDrainRate,
		retryJitter:      DefaultRetryJitter,
		oneSessionPerID:  true,
		maxSuspendWindow: DefaultMaxSuspendWindow,
		authz:            AllowAll{},
		frameRate:        DefaultFrameRate,
		frameBurst:       DefaultFrameBurst,
	}
}

func (c *config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.serverID != "", "WithServerID: the server id must not be empty")
	check(c.handler != nil, "WithHandler: the handler must not be nil")
	check(c.resumeWindow > 0, "WithResumeWindow: %v must be positive", c.resumeWindow)
	check(c.maxSuspendWindow > 0, "WithMaxSuspendWindow: %v must be positive", c.maxSuspendWindow)
	check(c.maxSessions > 0, "WithMaxSessions: %d must be positive", c.maxSessions)
	check(c.maxMessageBytes >= 1024, "WithMaxMessageBytes: %d must be at least 1024", c.maxMessageBytes)
	check(c.maxOutboundQueue > 0 && c.maxOutboundQueue <= math.MaxUint32, "WithMaxOutboundQueue: %d must be from 1 to %d", c.maxOutboundQueue, uint32(math.MaxUint32))
	check(c.maxOutboundBytes > 0 && c.maxOutboundBytes <= math.MaxUint32, "WithMaxOutboundBytes: %d must be from 1 to %d", c.maxOutboundBytes, uint32(math.MaxUint32))
	check(c.overflow.valid(), "WithOverflowPolicy: %d is not a policy: use OverflowBackpressure, OverflowDropOldest or OverflowDisconnect", c.overflow)
	check(c.maxTopics > 0, "WithMaxTopics: %d must be positive", c.maxTopics)
	check(c.dedupeWindow > 0, "WithDedupeWindow: %v must be positive", c.dedupeWindow)
	check(c.drainWindow >= 0, "WithDrain: the window %v must not be negative", c.drainWindow)
	check(c.drainRate > 0, "WithDrain: the rate %v must be positive", c.drainRate)
	check(c.authz != nil, "WithAuthorizer: the authorizer must not be nil")
	check(c.frameRate > 0 && c.frameBurst > 0, "WithFrameRate: rate %v and burst %d must be positive", c.frameRate, c.frameBurst)
	if err := c.profile.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("WithProfile: %w", err))
	}
	return errors.Join(errs...)
}

// WithServerID names this node in Welcome, AdminService and logs. The
// default is the host name plus a random suffix.
func WithServerID(id string) Option {
	return optionFunc(func(c *config) error { c.serverID = id; return nil })
}

// WithProfile sets the liveness profile: heartbeat bounds, transport
// keepalive and TCP keepalive. The default is [profile.Default].
func WithProfile(p profile.Profile) Option {
	return optionFunc(func(c *config) error { c.profile = p; return nil })
}

// WithHandler sets the application's handler. The default is [Router], which
// routes client messages to topics, sessions and client ids.
func WithHandler(h Handler) Option {
	return optionFunc(func(c *config) error { c.handler = h; return nil })
}

// WithPipelining says whether a session's messages to a session or client
// id go through the broker's pipeline when the broker has one (NATS; see
// broker.Pipeliner and pipeline.go): the reader does not wait for each
// route, and a sender pays a round trip per window of messages, not per
// message. On by default; off, the reader waits for each route, as a
// custom Handler's messages always do.
func WithPipelining(on bool) Option {
	return optionFunc(func(c *config) error { c.pipelining = on; return nil })
}

// WithAuthorizer sets who may connect, subscribe, publish and administer;
// see [Authorizer]. The default, [AllowAll], allows everything.
func WithAuthorizer(a Authorizer) Option {
	return optionFunc(func(c *config) error { c.authz = a; return nil })
}

// WithFrameRate bounds the frames the server reads from one stream:
// perSecond on average, in bursts of up to burst (Welcome announces both,
// as Limits.max_frames_per_second and max_frame_burst). Beyond it the
// server reads that stream more slowly: the client's frames wait in gRPC's
// buffers and HTTP/2 flow control holds its writes back. The stream is not
// cut for it, and its dead-peer deadline does not count the time the
// server spent waiting. Other streams are not affected. The defaults,
// [DefaultFrameRate] and [DefaultFrameBurst], are above what one stream
// can send on current hardware.
func WithFrameRate(perSecond float64, burst int) Option {
	return optionFunc(func(c *config) error { c.frameRate, c.frameBurst = rate.Limit(perSecond), burst; return nil })
}

// WithBroker sets the broker. The default is the in-memory broker
// ([memory.New]); the Server closes it on Close.
func WithBroker(b broker.Broker) Option {
	return optionFunc(func(c *config) error { c.broker = b; return nil })
}

// WithLogger sets the logger for session lifecycle events. The default
// discards everything.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: the logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithRegisterer registers the server's tether_ metrics with r. Without it
// the metrics are kept but not exported.
func WithRegisterer(r prometheus.Registerer) Option {
	return optionFunc(func(c *config) error { c.registerer = r; return nil })
}

// WithPrincipal sets the function that names the authenticated principal of
// a stream from its context (for example from a peer certificate or a token
// checked by an interceptor). Sessions are bound to it: a resume from
// another principal gets a fresh session. The default names everyone "".
func WithPrincipal(f func(context.Context) string) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return errors.New("WithPrincipal: the function must not be nil")
		}
		c.principal = f
		return nil
	})
}

// WithResumeWindow sets how long a session outlives a broken stream. The
// default is 2 minutes.
func WithResumeWindow(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.resumeWindow = d; return nil })
}

// WithMaxSessions caps the sessions (connected and detached) on this node.
// A new session beyond it is refused with UNAVAILABLE. The default is
// 100,000.
func WithMaxSessions(n int) Option {
	return optionFunc(func(c *config) error { c.maxSessions = n; return nil })
}

// WithMaxMessageBytes caps a message payload (Limits.max_message_bytes): a
// client message above it fails (an Error frame, then its ack), a Publish
// above it is INVALID_ARGUMENT. With 64 KiB of room for the frame around
// it, it also caps every frame a client sends (Limits.max_frame_bytes): a
// larger frame ends the stream with INVALID_ARGUMENT. The default is 1 MiB.
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c *config) error { c.maxMessageBytes = n; return nil })
}

// WithMaxOutboundQueue bounds a session's outbound log by count: the
// messages sent and not yet acknowledged, or queued, connected or not
// (Limits.max_outbound_queue). A message that finds the log full meets
// the overflow policy (see [WithOverflowPolicy]). It also bounds the
// receive window a client may ask for. The default is 4096; it must be
// positive.
func WithMaxOutboundQueue(n int) Option {
	return optionFunc(func(c *config) error { c.maxOutboundQueue = n; return nil })
}

// WithMaxOutboundBytes bounds a session's outbound log by payload bytes
// (Limits.max_outbound_bytes), like [WithMaxOutboundQueue] by count; a
// single message larger than it is queued when the log is empty. It also
// bounds the byte window a client may ask for. The default is 16 MiB; it
// must be positive.
func WithMaxOutboundBytes(n int) Option {
	return optionFunc(func(c *config) error { c.maxOutboundBytes = n; return nil })
}

// WithOverflowPolicy sets what becomes of a message for a session whose
// outbound log is full (Limits.overflow_policy). The default is
// [OverflowBackpressure]: the sender of a message for that one session is
// told to retry later; see [OverflowPolicy] for each.
func WithOverflowPolicy(p OverflowPolicy) Option {
	return optionFunc(func(c *config) error { c.overflow = p; return nil })
}

// WithMaxTopics caps the topics one session may subscribe to
// (Limits.max_topics): a Subscribe beyond it gets an Error frame naming
// the topic, a Hello beyond it ends the stream with INVALID_ARGUMENT. The
// default is 256.
func WithMaxTopics(n int) Option {
	return optionFunc(func(c *config) error { c.maxTopics = n; return nil })
}

// WithDedupeWindow sets how long an idempotency key is remembered. The
// default is 10 minutes.
func WithDedupeWindow(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.dedupeWindow = d; return nil })
}

// WithDrain sets how Drain spreads GoAway frames: over window, at no more
// than rate per second, each telling clients to wait up to jitter before
// reconnecting. The defaults are 10s, 1000/s and 5s.
func WithDrain(window time.Duration, rate float64, jitter time.Duration) Option {
	return optionFunc(func(c *config) error {
		c.drainWindow, c.drainRate, c.retryJitter = window, rate, jitter
		return nil
	})
}

// WithMultipleSessionsPerClient lets one client id hold several live
// sessions. By default a new session for a client id takes over (newest
// wins) and the older one ends with GoAway TAKEN_OVER.
func WithMultipleSessionsPerClient() Option {
	return optionFunc(func(c *config) error { c.oneSessionPerID = false; return nil })
}

// WithRecorderSize sets how many recent events each session's flight
// recorder keeps. The default is 64.
func WithRecorderSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithRecorderSize: %d must be positive", n)
		}
		c.recorderSize = n
		return nil
	})
}

func newConfig(opts []Option) (*config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if err := o.apply(c); err != nil {
			return nil, fmt.Errorf("tether/server: %w", err)
		}
	}
	if c.handler == nil {
		c.handler = Router{}
	}
	if c.broker == nil {
		c.broker = memory.New()
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("tether/server: invalid options: %w", err)
	}
	return c, nil
}

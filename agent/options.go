package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tetherhq/tether/client"
)

// Option configures an [Agent]. Options are applied in order by [New]; an
// invalid value makes New fail with an error that names the option.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config is the validated configuration of an Agent.
type config struct {
	bufferSize        int
	bufferBytes       int64
	maxBody           int64
	headerTimeout     time.Duration
	bodyTimeout       time.Duration
	requestTimeout    time.Duration
	maxRequestTimeout time.Duration
	maxInFlight       int
	callerLimit       int
	maxStreams        int
	callerStreams     int
	keepalive         time.Duration
	logger            *slog.Logger
	onState           func(client.StateChange)
}

func defaultConfig() *config {
	return &config{
		bufferSize:        1024,
		bufferBytes:       64 << 20,
		maxBody:           2 << 20,
		headerTimeout:     5 * time.Second,
		bodyTimeout:       10 * time.Second,
		requestTimeout:    30 * time.Second,
		maxRequestTimeout: 5 * time.Minute,
		maxInFlight:       1024,
		callerLimit:       256,
		maxStreams:        64,
		callerStreams:     8,
		keepalive:         15 * time.Second,
		logger:            slog.New(slog.DiscardHandler),
	}
}

func (c *config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.bufferSize > 0, "WithBuffer: %d events: must be positive", c.bufferSize)
	check(c.bufferBytes > 0, "WithBufferBytes: %d bytes: must be positive", c.bufferBytes)
	check(c.maxBody > 0, "WithMaxBody: %d bytes: must be positive", c.maxBody)
	check(c.headerTimeout > 0 && c.bodyTimeout > 0, "WithReadTimeouts: %v, %v: both must be positive", c.headerTimeout, c.bodyTimeout)
	check(c.requestTimeout > 0 && c.requestTimeout <= c.maxRequestTimeout,
		"WithRequestTimeout: the default %v must be positive and at most the maximum %v", c.requestTimeout, c.maxRequestTimeout)
	check(c.maxInFlight > 0 && c.callerLimit > 0, "WithLimits: in flight %d, per caller %d: both must be positive", c.maxInFlight, c.callerLimit)
	check(c.maxStreams > 0 && c.callerStreams > 0, "WithMaxStreams: %d in all, %d per caller: both must be positive", c.maxStreams, c.callerStreams)
	check(c.keepalive > 0, "WithKeepalive: %v: must be positive", c.keepalive)
	return errors.Join(errs...)
}

// WithBuffer sets how many events (messages and state changes) the agent
// keeps for event-stream readers that reconnect with Last-Event-ID. A
// reader that falls further behind is told which ids it missed. The
// default is 1024. [WithBufferBytes] bounds the same buffer in bytes.
func WithBuffer(events int) Option {
	return optionFunc(func(c *config) error { c.bufferSize = events; return nil })
}

// WithBufferBytes bounds the event buffer in bytes (each event's JSON and
// a small overhead): beyond it the oldest events go, as beyond
// [WithBuffer]'s count; the newest event is kept whatever its size. The
// default is 64 MiB.
func WithBufferBytes(bytes int64) Option {
	return optionFunc(func(c *config) error { c.bufferBytes = bytes; return nil })
}

// WithMaxBody bounds a request body, in bytes; a larger one gets 413. The
// default is 2 MiB (a 1 MiB payload in base64, with room to spare).
func WithMaxBody(bytes int64) Option {
	return optionFunc(func(c *config) error { c.maxBody = bytes; return nil })
}

// WithReadTimeouts bounds reading a request's headers and, separately, its
// body: a caller that trickles bytes (slowloris) is cut off with 408 or a
// closed connection. The defaults are 5s and 10s.
func WithReadTimeouts(header, body time.Duration) Option {
	return optionFunc(func(c *config) error { c.headerTimeout, c.bodyTimeout = header, body; return nil })
}

// WithRequestTimeout sets how long a request waits for its reply when the
// caller gives no "timeout" (def), and the longest timeout a caller may ask
// for (max). The defaults are 30s and 5m.
func WithRequestTimeout(def, max time.Duration) Option {
	return optionFunc(func(c *config) error { c.requestTimeout, c.maxRequestTimeout = def, max; return nil })
}

// WithLimits bounds the calls in flight on the whole agent (beyond it:
// 503, retryable) and per caller (beyond it: 429, retryable). A caller is
// a process on the Unix socket (its pid, from the socket's peer
// credentials on Linux; elsewhere a connection) and a connection on the
// loopback port: over TCP a process can open many connections, so there
// only the limits on the whole agent really bind. The defaults are 1024
// and 256.
func WithLimits(inFlight, perCaller int) Option {
	return optionFunc(func(c *config) error { c.maxInFlight, c.callerLimit = inFlight, perCaller; return nil })
}

// WithMaxStreams bounds the open event streams; beyond it a new one gets
// 503. The default is 64. [WithCallerStreams] bounds them per caller.
func WithMaxStreams(n int) Option {
	return optionFunc(func(c *config) error { c.maxStreams = n; return nil })
}

// WithCallerStreams bounds the event streams one caller may hold open
// (a caller as in [WithLimits]); beyond it a new one gets 429. The
// default is 8.
func WithCallerStreams(n int) Option {
	return optionFunc(func(c *config) error { c.callerStreams = n; return nil })
}

// WithKeepalive sets how often an idle event stream gets a comment line,
// so readers and proxies see it alive. The default is 15s.
func WithKeepalive(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.keepalive = d; return nil })
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

// WithOnState calls f on every state change of the agent's session, after
// the agent has handled it, on the SDK's callback goroutine. Use it
// instead of client.WithOnState, which the agent sets for itself.
func WithOnState(f func(client.StateChange)) Option {
	return optionFunc(func(c *config) error { c.onState = f; return nil })
}

func newConfig(opts []Option) (*config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if err := o.apply(c); err != nil {
			return nil, fmt.Errorf("tether/agent: %w", err)
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("tether/agent: invalid options: %w", err)
	}
	return c, nil
}

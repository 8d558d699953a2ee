package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// envPrefix prefixes the environment variable of every flag: --server-id is
// also read from TETHER_SERVER_ID.
const envPrefix = "TETHER"

// config is tetherd's settings, from flags, TETHER_ environment variables
// and an optional config file, checked by parseConfig.
type config struct {
	listen      string
	adminListen string // empty: no admin server
	profileName string
	profile     profile.Profile
	serverID    string // empty: the server's default

	resumeWindow     time.Duration
	maxSessions      int
	maxMessageBytes  int
	maxOutboundQueue int
	outboundLog      int

	drainWindow time.Duration
	drainRate   float64
	drainJitter time.Duration
	drainGrace  time.Duration

	logFormat string
	logLevel  slog.Level

	insecure bool
	tlsCert  string
	tlsKey   string
	tls      *tls.Config // nil: plaintext
}

// usageError is a mistake in the settings; tetherd exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// newFlagSet defines tetherd's flags on a fresh FlagSet that writes nothing:
// run prints the usage on -h and the errors itself.
func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("tetherd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	fs.String("config", "", "read settings from this `file`: one flag per line, \"name value\", # comments; or a JSON object")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7070", "serve gRPC on this `address` (host:port; port 0 picks a free one)")
	fs.StringVar(&c.adminListen, "admin-listen", "127.0.0.1:9090", "serve /healthz, /readyz, /metrics and /debug/sessions over HTTP on this `address`; empty disables it")
	fs.StringVar(&c.profileName, "profile", "default", "liveness `profile` for heartbeats, gRPC keepalive and TCP keepalive: "+strings.Join(profile.Names(), ", "))
	fs.StringVar(&c.serverID, "server-id", "", "`id` of this node in welcome frames, AdminService and logs (default: host name and a random suffix)")

	fs.DurationVar(&c.resumeWindow, "resume-window", server.DefaultResumeWindow, "how long a session outlives a broken stream, waiting for a resume")
	fs.IntVar(&c.maxSessions, "max-sessions", server.DefaultMaxSessions, "most sessions (connected or waiting for a resume) on this node; more are refused with UNAVAILABLE")
	fs.IntVar(&c.maxMessageBytes, "max-message-bytes", server.DefaultMaxMessageBytes, "largest message payload, in `bytes` (at least 1024)")
	fs.IntVar(&c.maxOutboundQueue, "max-outbound-queue", server.DefaultMaxOutboundQueue, "most unacknowledged messages per connected session; a client further behind is cut off as a slow consumer")
	fs.IntVar(&c.outboundLog, "outbound-log", server.DefaultOutboundLog, "most unacknowledged messages kept per session while it waits for a resume (at least --max-outbound-queue)")
	fs.DurationVar(&c.drainWindow, "drain-window", server.DefaultDrainWindow, "on SIGTERM, spread the sessions' go_away frames over this long (shorter than --drain-grace)")
	fs.Float64Var(&c.drainRate, "drain-rate", server.DefaultDrainRate, "on SIGTERM, send at most this many go_away frames per second")
	fs.DurationVar(&c.drainJitter, "drain-jitter", server.DefaultRetryJitter, "on SIGTERM, tell clients to wait a random delay of up to this long before reconnecting")
	fs.DurationVar(&c.drainGrace, "drain-grace", 30*time.Second, "on SIGTERM, how long the whole shutdown may take; streams still open then are cut")

	fs.StringVar(&c.logFormat, "log-format", "text", "log `format` on stderr: text or json")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "least severe `level` logged: debug, info, warn or error")

	fs.BoolVar(&c.insecure, "insecure", false, "allow plaintext gRPC and admin HTTP on addresses beyond loopback")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve TLS on both ports with this PEM certificate (chain) `file`; needs --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	return fs
}

// parseConfig parses args, the TETHER_ environment and the config file, and
// checks the result. It returns flag.ErrHelp, wrapped, for -h, and a
// usageError for bad settings.
func parseConfig(ctx context.Context, args []string) (*config, error) {
	c := &config{}
	fs := newFlagSet(c)
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix(envPrefix),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(parseConfigFile),
	)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, err
	case err != nil:
		return nil, usageError{err}
	case fs.NArg() > 0:
		return nil, usagef("unexpected argument %q: tetherd takes flags only", fs.Arg(0))
	}
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// parseConfigFile reads a config file in ff's plain format (one "name value"
// per line, # comments) or, when its first non-space character is "{", as a
// JSON object.
func parseConfigFile(r io.Reader, set func(name, value string) error) error {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil // empty or blank: nothing to set
		}
		if err != nil {
			return err
		}
		if strings.IndexByte(" \t\r\n", b) >= 0 {
			continue
		}
		_ = br.UnreadByte() // cannot fail right after ReadByte
		if b == '{' {
			return ff.JSONParser(br, set)
		}
		return ff.PlainParser(br, set)
	}
}

// check validates what the server package does not: names, the drain
// budget, TLS and plaintext beyond loopback. It loads the TLS key pair.
func (c *config) check(ctx context.Context) error {
	p, err := profile.Lookup(c.profileName)
	if err != nil {
		return usagef("--profile: %w", err)
	}
	c.profile = p
	if c.logFormat != "text" && c.logFormat != "json" {
		return usagef("--log-format %q: use text or json", c.logFormat)
	}
	if c.drainGrace <= 0 {
		return usagef("--drain-grace %v: must be positive", c.drainGrace)
	}
	if c.drainWindow >= c.drainGrace {
		return usagef("--drain-window %v must be shorter than --drain-grace %v, or the drain cannot finish in time", c.drainWindow, c.drainGrace)
	}
	if err := c.loadTLS(); err != nil {
		return err
	}
	if err := c.checkPlaintext(ctx, "--listen", c.listen); err != nil {
		return err
	}
	if c.adminListen != "" {
		return c.checkPlaintext(ctx, "--admin-listen", c.adminListen)
	}
	return nil
}

// loadTLS loads --tls-cert and --tls-key, when given, into c.tls.
func (c *config) loadTLS() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together: give both or neither")
	}
	if c.tlsCert == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return usagef("--tls-cert/--tls-key: %w", err)
	}
	c.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return nil
}

// checkPlaintext refuses plaintext on a non-loopback address unless
// --insecure is set.
func (c *config) checkPlaintext(ctx context.Context, flagName, addr string) error {
	if c.tls != nil {
		return nil
	}
	ok, err := isLoopback(ctx, addr)
	if err != nil {
		return usagef("%s %q: %w", flagName, addr, err)
	}
	if ok || c.insecure {
		return nil
	}
	return usagef("%s %s is not a loopback address: refusing to serve plaintext beyond loopback; "+
		"add --tls-cert and --tls-key to serve TLS, or --insecure to allow plaintext (for example behind a TLS-terminating load balancer)",
		flagName, addr)
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/loopback"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// The per-principal call rate limits (see usageHead, "Rate limits"). They
// guard a node against a client that loops, not against an honest
// service's volume, so Publish has a bucket of its own: 10,000 calls/s lets
// a backend publish thousands of messages per second, while a principal
// calling Publish in a loop is still bounded: one node serves 11,600 to
// 30,300 Publish calls/s at concurrency 50 on 2 shared vCPUs
// (BenchmarkPublishParallel in server/flow_bench_test.go, five runs).
// Stream opens stay at 50/s: no device reconnects more often, and a
// reconnect loop is throttled.
const (
	defaultRate         = 50
	defaultBurst        = 100
	defaultPublishRate  = 10_000
	defaultPublishBurst = 20_000
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
	maxSuspend       time.Duration
	maxSessions      int
	maxMessageBytes  int
	maxOutboundQueue int
	maxOutboundBytes int
	overflowPolicy   server.OverflowPolicy

	drainWindow time.Duration
	drainRate   float64
	drainJitter time.Duration
	drainGrace  time.Duration

	logFormat string
	logLevel  slog.Level

	insecure     bool
	tlsCert      string
	tlsKey       string
	clientCA     string
	tls          *tls.Config // nil: plaintext
	tokensFile   string      // empty: no authentication
	rate         float64     // stream opens and calls other than Publish per second per principal (or peer address); 0: unlimited
	burst        int
	publishRate  float64 // Publish calls per second per principal, in a bucket of their own; 0: unlimited
	publishBurst int
	frameRate    float64
	frameBurst   int

	broker      string // memory or nats
	nats        natsConfig
	natsFlagSet []string // --nats-* flags given, to warn about with --broker memory

	showVersion bool              // --version: print it and exit
	printConfig bool              // --print-config: print settings and exit
	from        map[string]string // where settings not from flags came from (see loadSettings)
	settings    [][2]string       // every setting and its value, secrets redacted
}

// natsConfig is the NATS broker's settings (--broker nats).
type natsConfig struct {
	url       string // one URL, or several comma-separated
	creds     string
	nkey      string
	user      string
	password  string
	token     string
	tlsCA     string
	tlsCert   string
	tlsKey    string
	prefix    string
	replicas  int
	retention time.Duration
	storage   string        // file or memory
	durable   string        // --nats-durability: cluster or node
	opts      []nats.Option // the credentials and TLS, built by check
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

	fs.String("config", "", "read settings from this `file`: one flag per line, \"name value\", # comments; or a JSON object (see deploy/tetherd.conf)")
	fs.BoolVar(&c.showVersion, "version", false, "print the version, commit and Go version, and exit")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the effective settings (secrets redacted) in the --config format, and exit")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7070", "serve gRPC on this `address` (host:port; port 0 picks a free one)")
	fs.StringVar(&c.adminListen, "admin-listen", "127.0.0.1:9090", "serve /healthz, /readyz, /metrics, /debug/sessions and the web console (/console/) over HTTP on this `address`; empty disables it")
	fs.StringVar(&c.profileName, "profile", "default", "liveness `profile` for heartbeats, gRPC keepalive and TCP keepalive: "+strings.Join(profile.Names(), ", "))
	fs.StringVar(&c.serverID, "server-id", "", "`id` of this node in welcome frames, AdminService and logs (default: host name and a random suffix)")

	fs.DurationVar(&c.resumeWindow, "resume-window", server.DefaultResumeWindow, "how long a session outlives a broken stream, waiting for a resume")
	fs.DurationVar(&c.maxSuspend, "max-suspend-window", server.DefaultMaxSuspendWindow, "how long at most a session its client suspended (a backgrounded app: Session.Suspend) is kept, without heartbeats, waiting for a resume; never less than --resume-window")
	fs.IntVar(&c.maxSessions, "max-sessions", server.DefaultMaxSessions, "most sessions (connected or waiting for a resume) on this node; more are refused with UNAVAILABLE")
	fs.IntVar(&c.maxMessageBytes, "max-message-bytes", server.DefaultMaxMessageBytes, "largest message payload, in `bytes` (at least 1024)")
	fs.IntVar(&c.maxOutboundQueue, "max-outbound-queue", server.DefaultMaxOutboundQueue, "most messages a session's outbound log holds (sent and unacknowledged, or queued, connected or not); a message that finds it full meets --overflow-policy")
	fs.IntVar(&c.maxOutboundBytes, "max-outbound-bytes", server.DefaultMaxOutboundBytes, "most payload `bytes` a session's outbound log holds; a message that finds it full meets --overflow-policy")
	fs.TextVar(&c.overflowPolicy, "overflow-policy", server.DefaultOverflowPolicy, "what a full outbound log does with a message: backpressure (refuse a message for one session, RESOURCE_EXHAUSTED to its sender; a topic drops the oldest, with a gap), drop-oldest (drop the oldest, with a gap frame) or disconnect (cut the stream as a slow consumer)")
	fs.DurationVar(&c.drainWindow, "drain-window", server.DefaultDrainWindow, "on SIGTERM, spread the sessions' go_away frames over this long (shorter than --drain-grace)")
	fs.Float64Var(&c.drainRate, "drain-rate", server.DefaultDrainRate, "on SIGTERM, send at most this many go_away frames per second")
	fs.DurationVar(&c.drainJitter, "drain-jitter", server.DefaultRetryJitter, "on SIGTERM, tell clients to wait a random delay of up to this long before reconnecting")
	fs.DurationVar(&c.drainGrace, "drain-grace", 30*time.Second, "on SIGTERM, how long the whole shutdown may take; streams still open then are cut")

	fs.StringVar(&c.logFormat, "log-format", "text", "log `format` on stderr: text or json")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "least severe `level` logged: debug, info, warn or error")

	fs.BoolVar(&c.insecure, "insecure", false, "allow plaintext gRPC and admin HTTP on addresses beyond loopback")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve TLS on both ports with this PEM certificate (chain) `file`; needs --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	fs.StringVar(&c.clientCA, "client-ca", "", "verify client certificates against this PEM CA `file` (mTLS); a certificate's CN or SAN names its principal in --tokens-file")
	fs.StringVar(&c.tokensFile, "tokens-file", "", "authenticate callers with the principals and hashed bearer tokens in this JSON `file` (reloaded on SIGHUP); see the auth package docs")
	fs.Float64Var(&c.rate, "rate", defaultRate, "stream opens, AdminService and other calls (not Publish) per second per principal (per peer address without auth); 0 for unlimited. Guards against reconnect loops; principals with rate_exempt in --tokens-file are never limited")
	fs.IntVar(&c.burst, "burst", defaultBurst, "burst allowed above --rate")
	fs.Float64Var(&c.publishRate, "publish-rate", defaultPublishRate, "TetherService.Publish calls per second per principal (per peer address without auth), in a bucket of their own; 0 for unlimited. High, so that a backend can publish for many users; rate_exempt principals are never limited")
	fs.IntVar(&c.publishBurst, "publish-burst", defaultPublishBurst, "burst allowed above --publish-rate")
	fs.Float64Var(&c.frameRate, "frame-rate", server.DefaultFrameRate, "frames per second the server reads from one stream; beyond it (a ping or subscribe flood) it reads more slowly, and never cuts the stream")
	fs.IntVar(&c.frameBurst, "frame-burst", server.DefaultFrameBurst, "burst allowed above --frame-rate")

	fs.StringVar(&c.broker, "broker", "memory", "message `broker`: memory (this node only: a session resumes on the node that holds it) or nats (many nodes: cross-node push, resume on any node)")
	n := &c.nats
	fs.StringVar(&n.url, "nats-url", "nats://127.0.0.1:4222", "with --broker nats: the NATS server `URLs`, comma-separated (tls:// for TLS)")
	fs.StringVar(&n.creds, "nats-creds", "", "with --broker nats: authenticate with this NATS credentials (JWT and seed) `file`")
	fs.StringVar(&n.nkey, "nats-nkey", "", "with --broker nats: authenticate with the NKey seed in this `file`")
	fs.StringVar(&n.user, "nats-user", "", "with --broker nats: authenticate as this `user`; needs --nats-password")
	fs.StringVar(&n.password, "nats-password", "", "`password` for --nats-user (prefer TETHER_NATS_PASSWORD or the config file to the command line)")
	fs.StringVar(&n.token, "nats-token", "", "with --broker nats: authenticate with this `token` (prefer TETHER_NATS_TOKEN or the config file to the command line)")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", "", "with --broker nats: verify the NATS servers against this PEM CA `file` instead of the system's")
	fs.StringVar(&n.tlsCert, "nats-tls-cert", "", "with --broker nats: present this PEM client certificate `file` to NATS (mTLS); needs --nats-tls-key")
	fs.StringVar(&n.tlsKey, "nats-tls-key", "", "PEM private key `file` for --nats-tls-cert")
	fs.StringVar(&n.prefix, "nats-prefix", natsbroker.DefaultPrefix, "with --broker nats: `prefix` of the subjects and streams, so several tether clusters can share one NATS system (letters, digits, - and _)")
	fs.IntVar(&n.replicas, "nats-replicas", 1, "with --broker nats: JetStream replicas of the broker's streams, 1 to 5 (3 to survive losing a NATS server)")
	fs.DurationVar(&n.retention, "nats-retention", natsbroker.DefaultRetention, "with --broker nats: how long JetStream keeps messages for resumes; at least --resume-window")
	fs.StringVar(&n.storage, "nats-storage", "file", "with --broker nats: JetStream `storage` of the broker's streams: file, or memory (faster; a NATS restart loses what it held)")
	fs.StringVar(&n.durable, "nats-durability", string(natsbroker.DurabilityCluster), "with --broker nats: where session logs live: cluster (JetStream: a session resumes on any node and loses nothing) or node (the holding node's memory: no JetStream write per message; a resume on another node loses what was unacknowledged and reports it)")
	return fs
}

// parseConfig parses args, the TETHER_ environment and the config file, and
// checks the result. It returns flag.ErrHelp, wrapped, for -h, and a
// usageError for bad settings.
func parseConfig(ctx context.Context, args []string) (*config, error) {
	c := &config{}
	fs := newFlagSet(c)
	from, err := loadSettings(fs, args)
	switch {
	case err != nil:
		return nil, err
	case fs.NArg() > 0:
		return nil, usagef("unexpected argument %q: tetherd takes flags only", fs.Arg(0))
	case c.showVersion:
		return c, nil
	}
	c.from, c.settings = from, effectiveSettings(fs)
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "nats-") {
			c.natsFlagSet = append(c.natsFlagSet, "--"+f.Name)
		}
	})
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// checkRates checks the per-principal call rates: not negative (0 turns a
// limit off), and a burst of at least 1 under a rate.
func (c *config) checkRates() error {
	for _, r := range []struct {
		rate, burst string
		r           float64
		b           int
	}{{"rate", "burst", c.rate, c.burst}, {"publish-rate", "publish-burst", c.publishRate, c.publishBurst}} {
		switch {
		case r.r < 0 || math.IsNaN(r.r):
			return usagef("%s %v: must be at least 0 (0 for unlimited)", c.describe(r.rate), r.r)
		case r.r > 0 && r.b < 1:
			return usagef("%s %d: must be at least 1 when %s is set", c.describe(r.burst), r.b, c.describe(r.rate))
		}
	}
	return nil
}

// check validates what the server package does not: names, the drain
// budget, TLS and plaintext beyond loopback. It loads the TLS key pair.
func (c *config) check(ctx context.Context) error {
	p, err := profile.Lookup(c.profileName)
	if err != nil {
		return usagef("%s: %w", c.describe("profile"), err)
	}
	c.profile = p
	if c.logFormat != "text" && c.logFormat != "json" {
		return usagef("%s %q: use text or json", c.describe("log-format"), c.logFormat)
	}
	if c.drainGrace <= 0 {
		return usagef("%s %v: must be positive", c.describe("drain-grace"), c.drainGrace)
	}
	if err := c.checkRates(); err != nil {
		return err
	}
	if c.drainWindow >= c.drainGrace {
		return usagef("%s %v must be shorter than %s %v, or the drain cannot finish in time",
			c.describe("drain-window"), c.drainWindow, c.describe("drain-grace"), c.drainGrace)
	}
	if err := c.loadTLS(); err != nil {
		return err
	}
	switch c.broker {
	case "memory":
	case "nats":
		if err := c.checkNATS(); err != nil {
			return err
		}
	default:
		return usagef("%s %q: use memory or nats", c.describe("broker"), c.broker)
	}
	if err := c.checkPlaintext(ctx, c.describe("listen"), c.listen); err != nil {
		return err
	}
	if c.adminListen != "" {
		return c.checkPlaintext(ctx, c.describe("admin-listen"), c.adminListen)
	}
	return nil
}

// describe names a setting in an error: its flag, or the environment
// variable or config file line it came from.
func (c *config) describe(name string) string { return describe(c.from, name) }

// checkNATS checks the --nats- settings and builds the nats.go options for
// the credentials and TLS.
func (c *config) checkNATS() error {
	n := &c.nats
	if strings.Trim(n.url, ", ") == "" {
		return usagef("%s: give at least one NATS server URL", c.describe("nats-url"))
	}
	if n.retention < c.resumeWindow {
		return usagef("--nats-retention %v is shorter than --resume-window %v: a session could outlive the messages kept for its resume; "+
			"raise --nats-retention or lower --resume-window", n.retention, c.resumeWindow)
	}
	if n.replicas < 1 || n.replicas > 5 {
		return usagef("%s %d: use 1 to 5", c.describe("nats-replicas"), n.replicas)
	}
	if n.storage != "file" && n.storage != "memory" {
		return usagef("%s %q: use file or memory", c.describe("nats-storage"), n.storage)
	}
	if _, err := natsbroker.ParseDurability(n.durable); err != nil {
		return usagef("%s %q: use cluster or node", c.describe("nats-durability"), n.durable)
	}
	if n.prefix == "" || strings.IndexFunc(n.prefix, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return usagef("%s %q: use letters, digits, - and _ only", c.describe("nats-prefix"), n.prefix)
	}
	var auths []string
	for _, a := range []struct{ flag, value string }{
		{"--nats-creds", n.creds}, {"--nats-nkey", n.nkey}, {"--nats-user", n.user}, {"--nats-token", n.token},
	} {
		if a.value != "" {
			auths = append(auths, a.flag)
		}
	}
	if len(auths) > 1 {
		return usagef("%s: give one way to authenticate to NATS, not several", strings.Join(auths, " and "))
	}
	if (n.user == "") != (n.password == "") {
		return usagef("--nats-user and --nats-password go together: give both or neither")
	}
	if (n.tlsCert == "") != (n.tlsKey == "") {
		return usagef("--nats-tls-cert and --nats-tls-key go together: give both or neither")
	}
	n.opts = nil
	switch {
	case n.creds != "":
		if _, err := os.Stat(n.creds); err != nil {
			return usagef("--nats-creds: %w", err)
		}
		n.opts = append(n.opts, nats.UserCredentials(n.creds))
	case n.nkey != "":
		opt, err := nats.NkeyOptionFromSeed(n.nkey)
		if err != nil {
			return usagef("--nats-nkey: %w", err)
		}
		n.opts = append(n.opts, opt)
	case n.user != "":
		n.opts = append(n.opts, nats.UserInfo(n.user, n.password))
	case n.token != "":
		n.opts = append(n.opts, nats.Token(n.token))
	}
	if n.tlsCA != "" {
		pem, err := os.ReadFile(n.tlsCA)
		if err != nil {
			return usagef("--nats-tls-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return usagef("--nats-tls-ca %s: no PEM certificate in it", n.tlsCA)
		}
		n.opts = append(n.opts, nats.RootCAs(n.tlsCA))
	}
	if n.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(n.tlsCert, n.tlsKey); err != nil {
			return usagef("--nats-tls-cert/--nats-tls-key: %w", err)
		}
		n.opts = append(n.opts, nats.ClientCert(n.tlsCert, n.tlsKey))
	}
	return nil
}

// natsOptions is the NATS broker's configuration.
func (c *config) natsOptions(log *slog.Logger) natsbroker.Options {
	return natsbroker.Options{
		Prefix:        c.nats.prefix,
		Replicas:      c.nats.replicas,
		MemoryStorage: c.nats.storage == "memory",
		Durability:    natsbroker.Durability(strings.ToLower(c.nats.durable)),
		Retention:     c.nats.retention,
		MaxLogEntries: max(natsbroker.DefaultMaxLogEntries, int64(c.maxOutboundQueue)),
		Logger:        log,
	}
}

// loadTLS loads --tls-cert and --tls-key, when given, into c.tls.
func (c *config) loadTLS() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together: give both or neither")
	}
	if c.tlsCert == "" {
		if c.clientCA != "" {
			return usagef("--client-ca needs --tls-cert and --tls-key: client certificates are checked in the TLS handshake")
		}
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return usagef("--tls-cert/--tls-key: %w", err)
	}
	c.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.clientCA != "" {
		if c.tokensFile == "" {
			return usagef("--client-ca needs --tokens-file: it names the principals (and their permissions) that certificates map to")
		}
		pem, err := os.ReadFile(c.clientCA)
		if err != nil {
			return usagef("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usagef("--client-ca %s: no PEM certificate in it", c.clientCA)
		}
		c.tls.ClientCAs = pool
		c.tls.ClientAuth = tls.VerifyClientCertIfGiven // a bearer token may stand in for a certificate
	}
	return nil
}

// checkPlaintext refuses plaintext on a non-loopback address unless
// --insecure is set.
func (c *config) checkPlaintext(ctx context.Context, flagName, addr string) error {
	ok, err := loopback.Addr(ctx, addr)
	if err != nil {
		return usagef("%s %q: %w", flagName, addr, err)
	}
	if ok || c.insecure || (c.tls != nil && c.tokensFile != "") {
		return nil
	}
	var missing []string
	if c.tls == nil {
		missing = append(missing, "TLS (--tls-cert and --tls-key)")
	}
	if c.tokensFile == "" {
		missing = append(missing, "authentication (--tokens-file)")
	}
	return usagef("%s %s is not a loopback address: refusing to serve beyond loopback without %s; "+
		"add them, or --insecure to allow it anyway (for example behind a load balancer that terminates TLS and authenticates)",
		flagName, addr, strings.Join(missing, " and "))
}

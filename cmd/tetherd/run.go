package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/interceptors"
	"github.com/tetherhq/tether/internal/console"
	"github.com/tetherhq/tether/internal/loopback"
	"github.com/tetherhq/tether/internal/version"
	"github.com/tetherhq/tether/server"
)

// run is tetherd: it parses args (flags, then the TETHER_ environment, then
// the config file), serves until ctx is done, then drains within
// --drain-grace. It reports every error on stderr before returning it, and
// returns nil after a drain, forced or not; exitCode turns its result into
// the exit status. --version and --print-config write to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(ctx, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stderr)
		return err
	case err != nil:
		fmt.Fprintf(stderr, "tetherd: %v\nRun 'tetherd -h' for usage.\n", err)
		return err
	case cfg.showVersion:
		_, err := fmt.Fprintf(stdout, "tetherd %s\n", version.Get())
		return err
	case cfg.printConfig:
		return writeConfig(stdout, cfg.settings)
	}
	log := newLogger(cfg, stderr)
	g, err := start(ctx, cfg, log)
	if err != nil {
		log.Error("tetherd could not start", "err", err)
		return err
	}
	if err := g.serve(ctx); err != nil {
		log.Error("tetherd failed", "err", err)
		return err
	}
	return nil
}

// exitCode is the exit status for run's result: 0 for success and -h, 2 for
// bad settings, 1 for anything else.
func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		return 2
	default:
		return 1
	}
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// gateway is a started tetherd: a tether server on a gRPC server, with its
// listeners bound, and the admin server.
type gateway struct {
	log   *slog.Logger
	srv   *server.Server
	gs    *grpc.Server
	lis   net.Listener
	admin *adminServer // nil when --admin-listen is empty
	grace time.Duration
}

// start builds the server and binds both listeners; nothing is served yet.
func start(ctx context.Context, cfg *config, log *slog.Logger) (*gateway, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var store *auth.TokenStore
	if cfg.tokensFile != "" {
		var err error
		if store, err = auth.LoadTokens(cfg.tokensFile); err != nil {
			return nil, usageError{fmt.Errorf("--tokens-file: %w", err)}
		}
		auth.WatchSIGHUP(ctx, store, log)
		log.Info("authentication on", "tokens_file", cfg.tokensFile, "principals", store.Len(), "mtls", cfg.clientCA != "")
	}
	opts := serverOptions(cfg, log, reg, store)
	var nb *natsBroker // the server closes it from server.New on
	if cfg.broker == "nats" {
		var err error
		if nb, err = connectNATS(cfg, log); err != nil {
			return nil, err
		}
		opts = append(opts, server.WithBroker(nb))
	} else if len(cfg.natsFlagSet) > 0 {
		log.Warn("--broker memory: ignoring the NATS settings", "flags", strings.Join(cfg.natsFlagSet, " "))
	}
	srv, err := server.New(opts...)
	if err != nil {
		if nb != nil {
			_ = nb.Close()
		}
		return nil, usageError{fmt.Errorf("invalid server settings: %w", err)}
	}
	if err := srv.Start(ctx); err != nil {
		_ = srv.Close() // and the broker
		if nb != nil {
			return nil, fmt.Errorf("--broker nats: %w", err)
		}
		return nil, err
	}
	if nb != nil {
		reg.MustRegister(nb.Broker) // tether_nats_broker_panics_total, tether_nats_broker_lost_total
		nb.logHealth(log.With("broker", "nats"))
		log.Info("broker connected", "broker", "nats", "url", cfg.nats.url, "prefix", cfg.nats.prefix,
			"replicas", cfg.nats.replicas, "storage", cfg.nats.storage, "retention", cfg.nats.retention, "durability", cfg.nats.durable)
	}
	chain, grpcMetrics, err := interceptors.ServerOptions(interceptorConfig(cfg, log, reg, store))
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid interceptor settings: %w", err)}
	}
	gsOpts := append(srv.GRPCServerOptions(), chain...)
	if cfg.tls != nil {
		gsOpts = append(gsOpts, grpc.Creds(credentials.NewTLS(cfg.tls)))
	}
	gs := grpc.NewServer(gsOpts...)
	srv.Register(gs)
	reflection.Register(gs)
	grpcMetrics.InitializeMetrics(gs)
	g := &gateway{log: log, srv: srv, gs: gs, grace: cfg.drainGrace}

	lc := cfg.profile.ListenConfig()
	if g.lis, err = lc.Listen(ctx, "tcp", cfg.listen); err != nil {
		g.abort()
		return nil, fmt.Errorf("--listen: %w", err)
	}
	if cfg.adminListen != "" {
		alis, err := net.Listen("tcp", cfg.adminListen)
		if err != nil {
			g.abort()
			return nil, fmt.Errorf("--admin-listen: %w", err)
		}
		var guard *auth.TokenStore // a token is required beyond loopback
		if local, _ := loopback.Addr(ctx, cfg.adminListen); !local {
			guard = store
		}
		g.admin = newAdminServer(alis, cfg.tls, srv, reg, log, guard, console.Config{Broker: cfg.broker, Profile: cfg.profile})
	}
	log.Info("tetherd starting", "server_id", srv.ID(), "version", version.Get().String())
	log.Info("effective configuration", configAttrs(cfg.settings)...)
	log.Info("listening", "service", "grpc", "addr", g.lis.Addr().String(), "tls", cfg.tls != nil)
	if g.admin != nil {
		log.Info("listening", "service", "admin", "addr", g.admin.lis.Addr().String(), "tls", cfg.tls != nil)
	}
	if cfg.insecure && cfg.tls == nil {
		log.Warn("--insecure: plaintext is allowed beyond loopback")
	}
	return g, nil
}

// configAttrs are the settings as log attributes, secrets redacted.
func configAttrs(settings [][2]string) []any {
	attrs := make([]any, 0, len(settings))
	for _, s := range settings {
		attrs = append(attrs, slog.String(s[0], s[1]))
	}
	return attrs
}

// natsBroker is the NATS broker, remembering why its Start failed, if it
// did: NATS refused (exit status 1), not a bad setting (2).
type natsBroker struct {
	*natsbroker.Broker
}

// connectNATS connects the NATS broker; the server starts it.
func connectNATS(cfg *config, log *slog.Logger) (*natsBroker, error) {
	name := "tetherd"
	if cfg.serverID != "" {
		name += " " + cfg.serverID
	} else if host, err := os.Hostname(); err == nil {
		name += " " + host
	}
	opts := append([]nats.Option{nats.Name(name)}, cfg.nats.opts...)
	b, err := natsbroker.Connect(cfg.nats.url, cfg.natsOptions(log.With("broker", "nats")), opts...)
	if err != nil {
		return nil, fmt.Errorf("--broker nats: %w", err)
	}
	return &natsBroker{Broker: b}, nil
}

// logHealth logs the broker's health changes: a warning with the reason
// when it becomes unavailable, and a notice when it works again. Its
// closing, at shutdown, is no news.
func (b *natsBroker) logHealth(log *slog.Logger) {
	var (
		mu   sync.Mutex
		down bool
	)
	b.NotifyHealth(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, broker.ErrClosed):
		case err != nil:
			down = true
			log.Warn("broker unavailable", "err", err)
		case down:
			down = false
			log.Info("broker available again")
		}
	})
}

// interceptorConfig is the interceptor chain: metrics, logging, bearer and
// mTLS authentication (when a tokens file is given), per-principal rate
// limits (per peer address without authentication; Publish in a bucket of
// its own; rate_exempt principals never), recovery.
func interceptorConfig(cfg *config, log *slog.Logger, reg prometheus.Registerer, store *auth.TokenStore) interceptors.Config {
	ic := interceptors.Config{Logger: log, Registerer: reg, RateKey: rateKey,
		MethodLimits: map[string]interceptors.Limit{
			tetherv1.TetherService_Publish_FullMethodName: {Rate: rate.Limit(cfg.publishRate), Burst: cfg.publishBurst},
		}}
	if cfg.rate > 0 {
		ic.Rate, ic.Burst = rate.Limit(cfg.rate), cfg.burst
	}
	if store != nil {
		ic.RateExempt = auth.RateExempt
		fns := []auth.AuthFunc{auth.BearerAuth(store)}
		if cfg.clientCA != "" {
			fns = append([]auth.AuthFunc{auth.MTLSAuth(auth.CertMapping(store))}, fns...)
		}
		ic.AuthFunc = auth.Chain(fns...)
	}
	return ic
}

// rateKey names who a call counts against: its principal, else its peer's
// address.
func rateKey(ctx context.Context) string {
	if n := auth.Name(ctx); n != "" {
		return n
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return "addr " + host
		}
		return "addr " + p.Addr.String()
	}
	return ""
}

func serverOptions(cfg *config, log *slog.Logger, reg prometheus.Registerer, store *auth.TokenStore) []server.Option {
	opts := []server.Option{
		server.WithFrameRate(cfg.frameRate, cfg.frameBurst),
		server.WithProfile(cfg.profile),
		server.WithLogger(log),
		server.WithRegisterer(reg),
		server.WithResumeWindow(cfg.resumeWindow),
		server.WithMaxSuspendWindow(cfg.maxSuspend),
		server.WithMaxSessions(cfg.maxSessions),
		server.WithMaxMessageBytes(cfg.maxMessageBytes),
		server.WithMaxOutboundQueue(cfg.maxOutboundQueue),
		server.WithMaxOutboundBytes(cfg.maxOutboundBytes),
		server.WithOverflowPolicy(cfg.overflowPolicy),
		server.WithDrain(cfg.drainWindow, cfg.drainRate, cfg.drainJitter),
	}
	if cfg.serverID != "" {
		opts = append(opts, server.WithServerID(cfg.serverID))
	}
	if store != nil {
		opts = append(opts, server.WithAuthorizer(auth.Authorizer{}), server.WithPrincipal(auth.Name))
	}
	return opts
}

// abort releases what start built when it cannot finish.
func (g *gateway) abort() {
	g.gs.Stop()
	_ = g.srv.Close()
	if g.lis != nil {
		_ = g.lis.Close()
	}
}

// serve serves gRPC and admin HTTP until ctx is done, then shuts down. It
// returns an error only when a server stopped on its own.
func (g *gateway) serve(ctx context.Context) error {
	ctx, drain := context.WithCancelCause(ctx)
	defer drain(nil)
	errc := make(chan error, 2)
	running := 1
	go func() { errc <- serveGRPC(g.gs, g.lis) }()
	if g.admin != nil {
		start := func() { drain(errConsoleDrain) }
		g.admin.drain.Store(&start)
		g.admin.ready.Store(true)
		running++
		go func() { errc <- g.admin.serve() }()
	}
	g.log.Info("serving")

	var err error
	select {
	case <-ctx.Done():
		g.log.Info("shutting down", "cause", context.Cause(ctx), "grace", g.grace)
		g.shutdown()
	case err = <-errc:
		running--
		g.stopNow()
	}
	for ; running > 0; running-- {
		err = errors.Join(err, <-errc)
	}
	return err
}

// errConsoleDrain is the cause of a shutdown asked for on the console.
var errConsoleDrain = errors.New("drain asked for on the web console")

// stopNow stops everything at once, without a drain, after a server failed.
func (g *gateway) stopNow() {
	g.gs.Stop()
	_ = g.srv.Close()
	if g.admin != nil {
		_ = g.admin.http.Close()
	}
}

// serveGRPC serves gs on lis until gs stops. A stop, even one before Serve
// began, is not an error.
func serveGRPC(gs *grpc.Server, lis net.Listener) error {
	if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("gRPC: %w", err)
	}
	return nil
}

// shutdown drains within the grace: readiness off, then the tether drain
// (health NOT_SERVING, paced go_away frames, the gRPC server stopped), then
// the admin server. The last part of the grace is kept for the admin server,
// so the whole stays within it even when the drain has to be cut short.
func (g *gateway) shutdown() {
	if g.admin != nil {
		g.admin.ready.Store(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.grace)
	defer cancel()
	drainCtx, cancelDrain := context.WithTimeout(ctx, g.grace-adminReserve(g.grace))
	err := g.srv.Drain(drainCtx)
	cancelDrain()
	if err != nil {
		g.log.Warn("drain cut short: streams still open were closed", "err", err)
	}
	if g.admin != nil {
		if err := g.admin.shutdown(ctx); err != nil {
			g.log.Warn("admin server cut short", "err", err)
		}
	}
	g.log.Info("tetherd stopped")
}

// adminReserve is the part of the grace kept for stopping the admin server
// after the drain: a tenth, at most two seconds.
func adminReserve(grace time.Duration) time.Duration {
	return min(grace/10, 2*time.Second)
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/internal/console"
	"github.com/tetherhq/tether/server"
)

// adminServer serves the admin HTTP endpoints: /healthz, /readyz, /metrics,
// /debug/sessions and the web console under /console/. Its methods are safe
// for concurrent use.
type adminServer struct {
	http   *http.Server
	lis    net.Listener
	secure bool
	srv    *server.Server
	ready  atomic.Bool // false until serving, and again while draining
	// drain, set before serving, starts the node's graceful stop (the
	// console's drain action).
	drain atomic.Pointer[func()]
}

// newAdminServer returns an admin server on lis, serving TLS when tlsCfg is
// not nil. It does not serve until serve is called.
//
// The console shows con (its Server, Gatherer, Ready, Drain and Guard are
// filled in here); beyond loopback it needs both TLS and a guard.
func newAdminServer(lis net.Listener, tlsCfg *tls.Config, srv *server.Server, reg *prometheus.Registry, log *slog.Logger, guard *auth.TokenStore, con console.Config) *adminServer {
	a := &adminServer{lis: lis, secure: tlsCfg != nil, srv: srv}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", adminOnly(guard, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry: reg, // counts its own errors as promhttp_metric_handler_errors_total
	})))
	mux.Handle("GET /debug/sessions", adminOnly(guard, srv.DebugHandler()))
	con.Server, con.Gatherer, con.Ready, con.Guard = srv, reg, a.readiness, guard
	con.Drain = a.startDrain
	con.LoopbackOnly = tlsCfg == nil || guard == nil
	mux.Handle(console.Prefix, console.New(con))
	mux.Handle("GET /console", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently))
	a.http = &http.Server{
		Handler:           mux,
		TLSConfig:         cloneTLS(tlsCfg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return a
}

// adminOnly requires "Authorization: Bearer TOKEN" of a principal with the
// admin permission when guard is not nil (the admin listener is beyond
// loopback); /healthz and /readyz stay open for load balancers.
func adminOnly(guard *auth.TokenStore, h http.Handler) http.Handler {
	if guard == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, found := guard.Lookup(strings.TrimSpace(token))
		switch {
		case !ok || !found:
			w.Header().Set("WWW-Authenticate", `Bearer realm="tetherd admin"`)
			writeText(w, http.StatusUnauthorized, "unauthorized: send Authorization: Bearer TOKEN of a principal with the admin permission\n")
		case !p.Perms.Admin || p.Expired(time.Now()):
			writeText(w, http.StatusForbidden, fmt.Sprintf("forbidden: principal %q lacks the admin permission (or has expired)\n", p.Name))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func cloneTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	return c.Clone()
}

// readyz answers 200 while the node serves, and 503 with the reason while
// it does not: once it drains, so load balancers stop sending it new
// clients before the sessions get go_away, and while its broker is
// unavailable (the NATS broker lost its connection).
func (a *adminServer) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := a.readiness(); err != nil {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}

// readiness returns nil while the node serves, and otherwise why not.
func (a *adminServer) readiness() error {
	if !a.ready.Load() {
		return errors.New("draining")
	}
	return a.srv.Ready()
}

// startDrain starts the node's graceful stop, as SIGTERM does, when
// serving has begun.
func (a *adminServer) startDrain() {
	if f := a.drain.Load(); f != nil {
		(*f)()
	}
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// serve serves until shutdown; it returns nil after shutdown and the error
// that stopped it otherwise.
func (a *adminServer) serve() error {
	var err error
	if a.secure {
		err = a.http.ServeTLS(a.lis, "", "") // the certificate is in TLSConfig
	} else {
		err = a.http.Serve(a.lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("admin HTTP: %w", err)
}

// shutdown stops the admin server, letting requests in flight finish until
// ctx ends, then closing what is left.
func (a *adminServer) shutdown(ctx context.Context) error {
	if err := a.http.Shutdown(ctx); err != nil {
		_ = a.http.Close()
		return err
	}
	return nil
}

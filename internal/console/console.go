// Package console is tetherd's web console for operators: a page of plain
// HTML, CSS and JavaScript, embedded in the binary, and the JSON endpoints
// it polls. It shows one node live (health, broker, profile, sessions by
// state, resume outcomes), its sessions (filtered, ordered and paged on the
// server), one session with its RTT and flight recorder drawn as a
// timeline, and it kicks sessions and drains the node.
//
// The page builds every element with textContent and createElement, never
// from HTML strings, so anything a client chose (client ids, topics,
// metadata) shows as text; a Content-Security-Policy that allows only the
// console's own files backs this up.
package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Config is what the console shows and what it may do.
type Config struct {
	// Server is the node.
	Server *server.Server
	// Gatherer reads the node's metrics (the resume outcomes); nil shows
	// none.
	Gatherer prometheus.Gatherer
	// Broker names the broker ("memory", "nats").
	Broker string
	// Profile is the liveness profile the node runs.
	Profile profile.Profile
	// Ready reports whether the node takes new sessions, and why not.
	Ready func() error
	// Drain starts a graceful stop of the node and returns at once; nil
	// offers no drain.
	Drain func()
	// Guard, when not nil, requires a bearer token of a principal with the
	// admin or admin_read permission on every endpoint but the page's own
	// files; kick and drain need admin. Nil allows everything.
	Guard *auth.TokenStore
	// LoopbackOnly serves only requests from a loopback address that name
	// a loopback host (the latter defends against DNS rebinding). Set it
	// unless the listener has both TLS and a Guard.
	LoopbackOnly bool
}

// Handler serves the console under [Prefix]. Its methods are safe for
// concurrent use.
type Handler struct {
	cfg  Config
	mux  *http.ServeMux
	csrf []byte // key of the CSRF tokens
}

// New returns the console's handler; mount it at [Prefix].
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), csrf: make([]byte, 32)}
	_, _ = rand.Read(h.csrf) // crypto/rand.Read never fails
	files, _ := fs.Sub(assets, "assets")
	h.mux.Handle("GET "+Prefix, http.StripPrefix(Prefix, http.FileServerFS(files)))
	h.mux.Handle("GET "+Prefix+"api/overview", h.viewer(h.overview))
	h.mux.Handle("GET "+Prefix+"api/sessions", h.viewer(h.sessions))
	h.mux.Handle("GET "+Prefix+"api/sessions/{id}", h.viewer(h.session))
	h.mux.Handle("POST "+Prefix+"api/sessions/{id}/kick", h.actor(h.kick))
	h.mux.Handle("POST "+Prefix+"api/drain", h.actor(h.drain))
	return h
}

// ServeHTTP serves the console with its security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if h.cfg.LoopbackOnly && (!loopbackHost(r.Host) || !loopbackHost(r.RemoteAddr)) {
		writeError(w, http.StatusForbidden, "forbidden: without TLS and --tokens-file the console serves only loopback: open it on this machine at 127.0.0.1, [::1] or localhost")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a host or host:port names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// access is what a request may do.
type access struct {
	principal string
	act       bool
}

// authorize returns the request's access, or writes the error and returns
// false.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) (access, bool) {
	if h.cfg.Guard == nil {
		return access{act: true}, true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p, found := h.cfg.Guard.Lookup(strings.TrimSpace(token))
	switch {
	case !ok || !found:
		w.Header().Set("WWW-Authenticate", `Bearer realm="tetherd admin"`)
		writeError(w, http.StatusUnauthorized, "unauthorized: enter the bearer token of a principal with the admin or admin_read permission")
		return access{}, false
	case p.Expired(time.Now()) || !(p.Perms.Admin || p.Perms.AdminRead):
		writeError(w, http.StatusForbidden, "forbidden: principal "+strconv.Quote(p.Name)+" lacks the admin and admin_read permissions (or has expired)")
		return access{}, false
	}
	return access{principal: p.Name, act: p.Perms.Admin}, true
}

// viewer wraps a read-only endpoint.
func (h *Handler) viewer(f func(http.ResponseWriter, *http.Request, access)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := h.authorize(w, r); ok {
			f(w, r, a)
		}
	})
}

// actor wraps an action: it needs the admin permission, a same-origin
// request and the CSRF token the overview handed out.
func (h *Handler) actor(f func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := h.authorize(w, r)
		switch {
		case !ok:
		case !a.act:
			writeError(w, http.StatusForbidden, "forbidden: principal "+strconv.Quote(a.principal)+" may look but not act: kick and drain need the admin permission")
		case !sameOrigin(r):
			writeError(w, http.StatusForbidden, "forbidden: a cross-site request; use the console's own page")
		case !hmac.Equal([]byte(r.Header.Get("X-CSRF-Token")), []byte(h.csrfToken(a.principal))):
			writeError(w, http.StatusForbidden, "forbidden: missing or stale X-CSRF-Token; reload the console")
		default:
			f(w, r)
		}
	})
}

// sameOrigin reports whether the browser says the request came from the
// console's own origin. Browsers send Origin on every POST and
// Sec-Fetch-Site on every request; clients that send neither are not
// browsers, and the CSRF token still binds them.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return o == scheme+r.Host
}

// csrfToken is the CSRF token of a principal ("" without auth): an HMAC
// under the console's key, so only a page that could read the overview
// knows it.
func (h *Handler) csrfToken(principal string) string {
	m := hmac.New(sha256.New, h.csrf)
	m.Write([]byte(principal))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

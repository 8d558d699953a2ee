package natstest

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterName is the name of the cluster [StartCluster] forms.
const ClusterName = "tether-test"

// LogEnv is the environment variable that turns the servers' logs on when
// it is "1".
const LogEnv = "TETHER_NATS_LOG"

// TB is the part of testing.TB that natstest uses: a *testing.T or
// *testing.B, or a runner of its own outside tests (tether-bench's chaos
// scenario). Fatalf must not return.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(f func())
	TempDir() string
}

// Bounds of the waits for a server, or a cluster, to be ready.
const (
	startTimeout   = 10 * time.Second
	clusterTimeout = 30 * time.Second
	pollInterval   = 50 * time.Millisecond
)

// Server is one embedded NATS server with JetStream, on 127.0.0.1. Its
// client and cluster ports, name and store directory stay the same across
// [Server.Shutdown] and [Server.Restart]. Its methods are safe for
// concurrent use.
type Server struct {
	name  string
	group *group // the servers started together, this one included

	mu   sync.Mutex
	opts *server.Options // for the next start; ports fixed once bound
	srv  *server.Server  // the current instance, nil before the first start
}

// group is the servers of one Start or StartCluster call.
type group struct {
	servers   []*Server
	clustered bool
}

// Start starts one NATS server with JetStream on 127.0.0.1 and an ephemeral
// client port, storing in a directory of t.TempDir(). It fails the test if
// the server is not ready within 10 seconds, and shuts the server down, and
// waits for it, when the test ends.
func Start(t TB) *Server {
	t.Helper()
	s := newServer("n1", t.TempDir()) // TempDir first: its removal runs after the shutdown
	s.group = &group{servers: []*Server{s}}
	t.Cleanup(s.Shutdown)
	if err := s.start(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	s.group.wait(t, startTimeout)
	return s
}

// StartCluster starts n NATS servers, named "n1" to "nN", that form one
// JetStream cluster named [ClusterName] on 127.0.0.1: ephemeral client
// ports, cluster ports picked up front so that every server has a route to
// every other, and a store directory of t.TempDir() each. It returns once
// the routes are up and JetStream has a meta leader that every server
// follows, and fails the test if that takes more than 30 seconds. The
// servers are shut down, and waited for, when the test ends.
func StartCluster(t TB, n int) []*Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: StartCluster(%d): want at least one server", n)
	}
	ports := freePorts(t, n)
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))}
	}
	g := &group{clustered: true}
	for i := range n {
		s := newServer("n"+strconv.Itoa(i+1), t.TempDir())
		s.opts.Cluster = server.ClusterOpts{Name: ClusterName, Host: "127.0.0.1", Port: ports[i]}
		s.opts.Routes = routes
		s.group = g
		g.servers = append(g.servers, s)
	}
	t.Cleanup(func() { shutdownAll(g.servers) })
	for _, s := range g.servers {
		if err := s.start(); err != nil {
			t.Fatalf("natstest: %v", err)
		}
	}
	g.wait(t, clusterTimeout)
	return slices.Clone(g.servers)
}

// ClusterURLs returns the client URLs of servers, comma-separated, as
// nats.Connect takes them.
func ClusterURLs(servers []*Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// Connect connects to urls (one URL, or several comma-separated) with opts
// and closes the connection when the test ends. It fails the test if the
// connection cannot be made.
func Connect(t TB, urls string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatalf("natstest: connecting to %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newServer(name, dir string) *Server {
	return &Server{name: name, opts: &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       -1, // ephemeral until the first start binds it
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   dir,
	}}
}

// Name returns the server's name: "n1" for Start, "n1" to "nN" for
// StartCluster.
func (s *Server) Name() string { return s.name }

// URL returns the server's client URL, nats://127.0.0.1:PORT. It stays
// the same across restarts.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (&url.URL{Scheme: "nats", Host: net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))}).String()
}

// Server returns the running nats-server instance: a new one after each
// [Server.Restart].
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server now and waits until it has stopped. Clients
// see their connection drop. Calling it again, or on a stopped server, does
// nothing.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Restart shuts the server down if it runs, then starts it again with the
// same ports, name and store directory, and waits, within the bounds of
// Start and StartCluster, until it serves and, in a cluster, has rejoined
// it with JetStream current. It fails t otherwise.
func (s *Server) Restart(t TB) {
	t.Helper()
	s.Shutdown()
	if err := s.start(); err != nil {
		t.Fatalf("natstest: restarting: %v", err)
	}
	timeout := startTimeout
	if s.group.clustered {
		timeout = clusterTimeout
	}
	s.group.wait(t, timeout)
}

// start starts a new instance with s.opts, waits until it accepts
// connections, and fixes the ephemeral client port it bound for the next
// start.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil && s.srv.Running() {
		return fmt.Errorf("NATS server %s is already running", s.name)
	}
	srv, err := server.NewServer(s.opts.Clone())
	if err != nil {
		return fmt.Errorf("NATS server %s: %w", s.name, err)
	}
	if os.Getenv(LogEnv) == "1" {
		srv.SetLogger(newLogger(s.name), false, false)
	}
	srv.Start()
	s.srv = srv
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("NATS server %s (client port %d, cluster port %d) not ready for connections within %v (set %s=1 for its logs)",
			s.name, s.opts.Port, s.opts.Cluster.Port, startTimeout, LogEnv)
	}
	if s.opts.Port <= 0 {
		s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// running returns the current instance if it runs.
func (s *Server) running() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || !s.srv.Running() {
		return nil
	}
	return s.srv
}

// wait polls until the running servers of g are ready (see state), and
// fails t if they are not within timeout.
func (g *group) wait(t TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := g.state()
		if err == nil {
			err = g.checkAccountInfo(time.Until(deadline))
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			what := "NATS server"
			if g.clustered {
				what = "NATS cluster " + ClusterName
			}
			t.Fatalf("natstest: %s not ready within %v: %v (set %s=1 for the servers' logs)", what, timeout, err, LogEnv)
		}
		time.Sleep(pollInterval)
	}
}

// state returns nil when every running server of g has JetStream and, in a
// cluster, routes to every other running server, follows a current meta
// leader, and the leader sees them all as peers; else it says what is
// missing.
func (g *group) state() error {
	var names []string
	running := map[string]*server.Server{}
	for _, s := range g.servers {
		if srv := s.running(); srv != nil {
			names = append(names, s.name)
			running[s.name] = srv
		}
	}
	if len(running) == 0 {
		return errors.New("no server is running")
	}
	for _, name := range names {
		if !running[name].JetStreamEnabled() {
			return fmt.Errorf("%s: JetStream is not enabled", name)
		}
	}
	if !g.clustered {
		return nil
	}
	var leader *server.Server
	for _, name := range names {
		srv := running[name]
		rz, err := srv.Routez(nil)
		if err != nil {
			return fmt.Errorf("%s: routez: %w", name, err)
		}
		routed := map[string]bool{}
		for _, r := range rz.Routes {
			routed[r.RemoteName] = true
		}
		for _, other := range names {
			if other != name && !routed[other] {
				return fmt.Errorf("%s has no route to %s yet", name, other)
			}
		}
		if srv.JetStreamIsLeader() {
			leader = srv
		}
	}
	if leader == nil {
		return errors.New("JetStream has no meta leader yet")
	}
	for _, name := range names {
		if !running[name].JetStreamIsCurrent() {
			return fmt.Errorf("%s: JetStream meta state is not current yet", name)
		}
	}
	peers := leader.JetStreamClusterPeers()
	for _, name := range names {
		if !slices.Contains(peers, name) {
			return fmt.Errorf("meta leader %s does not see %s as an online peer yet (peers %v)", leader.Name(), name, peers)
		}
	}
	return nil
}

// checkAccountInfo asks every running server of g for the JetStream
// account info, which needs a meta leader in a cluster.
func (g *group) checkAccountInfo(budget time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), max(min(budget, 2*time.Second), pollInterval))
	defer cancel()
	for _, s := range g.servers {
		srv := s.running()
		if srv == nil {
			continue
		}
		nc, err := nats.Connect(srv.ClientURL(), nats.Name("natstest probe"), nats.NoReconnect())
		if err != nil {
			return fmt.Errorf("%s: connecting: %w", s.name, err)
		}
		js, err := jetstream.New(nc)
		if err == nil {
			_, err = js.AccountInfo(ctx)
		}
		nc.Close()
		if err != nil {
			return fmt.Errorf("%s: JetStream account info: %w", s.name, err)
		}
	}
	return nil
}

// shutdownAll shuts servers down in parallel and waits for them all.
func shutdownAll(servers []*Server) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(s.Shutdown)
	}
	wg.Wait()
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, found by
// listening on port 0 and closing. Another process could take one before
// the cluster binds it; a server that cannot bind its port fails the test
// with a message that says so.
func freePorts(t TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var lis []net.Listener
	defer func() {
		for _, l := range lis {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: finding a free port: %v", err)
		}
		lis = append(lis, l) // kept open until all are found, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// logger writes a server's log lines to stderr, prefixed with its name.
type logger struct{ l *log.Logger }

func newLogger(name string) logger {
	return logger{log.New(os.Stderr, "nats "+name+" ", log.Ltime|log.Lmicroseconds|log.Lmsgprefix)}
}

func (l logger) Noticef(format string, v ...any) { l.l.Printf("[INF] "+format, v...) }
func (l logger) Warnf(format string, v ...any)   { l.l.Printf("[WRN] "+format, v...) }
func (l logger) Fatalf(format string, v ...any)  { l.l.Printf("[FTL] "+format, v...) }
func (l logger) Errorf(format string, v ...any)  { l.l.Printf("[ERR] "+format, v...) }
func (l logger) Debugf(format string, v ...any)  { l.l.Printf("[DBG] "+format, v...) }
func (l logger) Tracef(format string, v ...any)  { l.l.Printf("[TRC] "+format, v...) }

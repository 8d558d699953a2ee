// Package system defines what a system under test implements for the load
// driver: a server side that runs the benchmark [App] in the server
// process, and a client side that the driver dials. The scenarios are
// written against these interfaces only, so a new system (Centrifuge, a
// plain TCP floor) is one more implementation, registered in [Register],
// without touching a scenario.
package system

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/tetherhq/tether/profile"
)

// ServerOptions configure a server system.
type ServerOptions struct {
	// Profile is the liveness profile both sides use (grpc keepalive,
	// TCP keepalive, heartbeat bounds).
	Profile profile.Profile
	// NATS, when set, is the URL of a NATS server (JetStream) for a system
	// with a shared broker (tether: broker/nats with its default Options);
	// empty: the system's in-memory default.
	NATS string
	// NATSDurability, with NATS, is the shared broker's durability mode
	// (tether: broker/nats Options.Durability, "cluster" or "node");
	// empty: its default.
	NATSDurability string
	// Replicas is the JetStream replication factor of the NATS broker's
	// streams (tetherd --nats-replicas): 0 keeps the broker's default, 1;
	// 3 on a three-server NATS cluster.
	Replicas int
	// ID names the server node; several nodes sharing a NATS broker need
	// one each. Empty: the system's own bench name.
	ID string
}

// Server is a system's server side, running in the server process. Serve
// and Stop are called once each.
type Server interface {
	// Serve serves on lis until Stop; it dispatches every session's
	// messages to the App it was built with.
	Serve(lis net.Listener) error
	// Stop ends every session and returns once Serve has returned.
	Stop()
}

// ClientOptions configure one client session.
type ClientOptions struct {
	// ID names the session (a client id); unique per session in a run.
	ID string
	// Profile is the liveness profile (see ServerOptions.Profile).
	Profile profile.Profile
	// Heartbeat, when positive, asks for this heartbeat interval; the
	// client then measures the heartbeat round trip and reports each
	// sample to OnRTT (tether: the SDK's ping/pong; raw: an app-level
	// ping/pong at the same interval).
	Heartbeat time.Duration
	OnRTT     func(time.Duration)
	// Observer, when set, receives the session's cuts, reported gaps and
	// failed sends (see [Observer]).
	Observer Observer
	// Dialer, when set, opens the session's connections in place of the
	// system's own dialer (the multi-node scenario's in-process load
	// balancer); it must keep the profile's TCP settings.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

// Client is one session of a system, on the driver's side. Send is safe
// for concurrent use; Recv is called from one goroutine at a time, and
// returns an error once Close was called.
type Client interface {
	// Send sends one business message (a payload for the App).
	Send(ctx context.Context, payload []byte) error
	// Recv returns the next business message from the server.
	Recv(ctx context.Context) ([]byte, error)
	// Close ends the session for good.
	Close() error
}

// System is one implementation under test.
type System struct {
	// Name is what --systems and the tables call it.
	Name string
	// Describe says in a line what runs, for the report.
	Describe string
	// NewServer builds the server side around app.
	NewServer func(app *App, opts ServerOptions) (Server, error)
	// Dial opens one session to addr and returns once it is established.
	Dial func(ctx context.Context, addr string, opts ClientOptions) (Client, error)
	// NeedsPushWindow is true when the system's server cannot push to a
	// session flat out without an app-level credit window (its publish
	// never blocks and a client too far behind is disconnected); push's
	// s2c case then runs the App's window. tether (its outbound log is
	// bounded, a full one refuses the message: the App retries) and raw
	// (SendMsg blocks on HTTP/2 flow control) push without one.
	NeedsPushWindow bool
}

var registry = map[string]System{}

// Register adds s; it panics on a duplicate name (a programming error).
func Register(s System) {
	if _, ok := registry[s.Name]; ok {
		panic("system: registered twice: " + s.Name)
	}
	registry[s.Name] = s
}

// Lookup returns the system named name.
func Lookup(name string) (System, error) {
	s, ok := registry[name]
	if !ok {
		return System{}, fmt.Errorf("unknown system %q (known: %v)", name, Names())
	}
	return s, nil
}

// Names returns the registered systems, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return slices.Clip(names)
}

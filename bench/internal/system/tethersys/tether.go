// Package tethersys is tether under test: server.New with the in-memory
// broker and default options (except the per-stream frame-rate limit, see
// NewServer), driven by the SDK (client.Session).
package tethersys

import (
	"context"
	"math"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/server"
)

// System returns the tether system.
func System() system.System {
	return system.System{
		Name:      "tether",
		Describe:  "tether server (memory broker, default options, frame-rate limit off) and Go SDK",
		NewServer: NewServer,
		Dial:      Dial,
	}
}

type tetherServer struct {
	srv *server.Server
	gs  *grpc.Server
}

// NewServer builds a tether server with default options and the given
// profile. The one change is WithFrameRate: its default (2000 frames/s
// per stream, bursts of 4000) is flood protection that every throughput
// and latency run exceeds by design, so it is set to unlimited (the
// limiter's fast path).
func NewServer(app *system.App, opts system.ServerOptions) (system.Server, error) {
	srv, err := server.New(
		server.WithServerID("bench"),
		server.WithProfile(opts.Profile),
		server.WithHandler(&handler{app: app}),
		server.WithFrameRate(math.MaxFloat64, 1),
	)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	return &tetherServer{srv: srv, gs: gs}, nil
}

func (s *tetherServer) Serve(lis net.Listener) error { return s.gs.Serve(lis) }

func (s *tetherServer) Stop() {
	_ = s.srv.Close()
	s.gs.Stop()
}

// handler hands each session's messages to its Peer.
type handler struct {
	app   *system.App
	peers sync.Map // session id → *system.Peer
}

type conn struct{ s *server.Session }

func (c conn) Send(payload []byte) error {
	ok, err := c.s.Send(context.Background(), payload)
	if err == nil && !ok {
		return system.ErrClosed
	}
	return err
}

func (h *handler) OnConnect(_ context.Context, s *server.Session) error {
	if _, ok := h.peers.Load(s.ID()); !ok {
		h.peers.Store(s.ID(), h.app.Open(conn{s}))
	}
	return nil
}

func (h *handler) OnMessage(_ context.Context, s *server.Session, m *server.Message) error {
	if p, ok := h.peers.Load(s.ID()); ok {
		p.(*system.Peer).OnMessage(m.Payload)
	}
	return nil
}

func (h *handler) OnClose(s *server.Session, _ string) {
	if p, ok := h.peers.LoadAndDelete(s.ID()); ok {
		p.(*system.Peer).Close()
	}
}

type tclient struct{ s *client.Session }

// Dial opens an SDK session with the profile and waits until it is
// connected (Welcome received).
func Dial(ctx context.Context, addr string, opts system.ClientOptions) (system.Client, error) {
	var more []client.Option
	if f := opts.OnRTT; f != nil {
		more = append(more, client.WithOnRTT(func(_ string, rtt time.Duration) { f(rtt) }))
	}
	return dial(ctx, addr, opts, more...)
}

// dial opens an SDK session with the profile (and opts' heartbeat) and
// more options, and waits until it is connected.
func dial(ctx context.Context, addr string, opts system.ClientOptions, more ...client.Option) (system.Client, error) {
	copts := []client.Option{
		client.WithAddrs(addr),
		client.WithClientID(opts.ID),
		client.WithProfile(opts.Profile),
	}
	if opts.Heartbeat > 0 {
		copts = append(copts, client.WithHeartbeat(opts.Heartbeat))
	}
	s, err := client.New(append(copts, more...)...)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	return &tclient{s: s}, nil
}

// topic is where the driver's messages go; the bench handler ignores it
// (the SDK requires a target).
const topic = "bench"

func (c *tclient) Send(ctx context.Context, payload []byte) error {
	return c.s.Send(ctx, client.Message{Topic: topic, Payload: payload})
}

func (c *tclient) Recv(ctx context.Context) ([]byte, error) {
	m, err := c.s.Receive(ctx)
	if err != nil {
		return nil, err
	}
	return m.Payload, nil
}

func (c *tclient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.s.Close(ctx)
}

// Package tethersys is tether under test: server.New with default options
// and the in-memory broker (or broker/nats with its default Options),
// driven by the SDK (client.Session) with its defaults. No flow-control
// setting is changed on either side: no frame-rate override, no
// application-level credit window (see NewServer and Dial).
package tethersys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/server"
)

// System returns the tether system.
func System() system.System {
	return system.System{
		Name:      "tether",
		Describe:  "tether server (default options; memory broker, or NATS with its default options) and Go SDK (default options)",
		NewServer: NewServer,
		Dial:      Dial,
	}
}

// options are the server options every tether server of the bench uses:
// tetherd's defaults but for what names the node and carries the
// scenario's parameters. WithServerID names the node ("bench", or the
// case's node id: nodes sharing a NATS broker need one each); WithProfile
// passes the case's liveness profile ("default" but in the heartbeat and
// detection cases, which measure a profile); the handler runs the
// benchmark App and hands every message addressed to a session or client
// id to server.Router, tetherd's default handler; NATS replaces the memory
// broker when asked for (broker/nats.Connect with its default Options but
// the replicas asked for, as tetherd --broker nats --nats-replicas N
// connects).
func options(h server.Handler, opts system.ServerOptions) ([]server.Option, error) {
	id := opts.ID
	if id == "" {
		id = "bench"
	}
	o := []server.Option{
		server.WithServerID(id),
		server.WithProfile(opts.Profile),
		server.WithHandler(h),
	}
	if opts.NATS != "" {
		d, err := natsbroker.ParseDurability(opts.NATSDurability)
		if err != nil {
			return nil, fmt.Errorf("tether: --nats-durability: %w", err)
		}
		nb, err := natsbroker.Connect(opts.NATS, natsbroker.Options{Durability: d, Replicas: opts.Replicas})
		if err != nil {
			return nil, fmt.Errorf("tether: --nats: %w", err)
		}
		o = append(o, server.WithBroker(nb)) // the server closes it
	}
	return o, nil
}

type tetherServer struct {
	srv *server.Server
	gs  *grpc.Server
}

// NewServer builds a tether server with default options (see options)
// and the given profile.
func NewServer(app *system.App, opts system.ServerOptions) (system.Server, error) {
	o, err := options(&handler{app: app}, opts)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(o...)
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

// Send queues payload to the session; a full outbound log (the default
// BACKPRESSURE policy refuses the message: broker.ErrFull, or its
// RESOURCE_EXHAUSTED status) is system.ErrFull, which the App retries.
func (c conn) Send(payload []byte) error {
	ok, err := c.s.Send(context.Background(), payload)
	switch {
	case errors.Is(err, broker.ErrFull) || status.Code(err) == codes.ResourceExhausted:
		return system.ErrFull
	case err == nil && !ok:
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

// OnMessage hands a message to the bench topic to the session's Peer and
// routes every other one as tetherd does (server.Router: relay and flow
// send to a client id).
func (h *handler) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	if m.Target != broker.Topic(topic) {
		return server.Router{}.OnMessage(ctx, s, m)
	}
	if p, ok := h.peers.Load(s.ID()); ok {
		p.(*system.Peer).OnMessage(m.Payload)
	}
	return nil
}

// PassesToRouter reports that every message but the bench topic's goes to
// server.Router unchanged, so that the server routes those as tetherd does
// (server.PassThrough: pipelined on NATS).
func (h *handler) PassesToRouter(_ *server.Session, m *server.Message) bool {
	return m.Target != broker.Topic(topic)
}

func (h *handler) OnClose(s *server.Session, _ string) {
	if p, ok := h.peers.LoadAndDelete(s.ID()); ok {
		p.(*system.Peer).Close()
	}
}

type tclient struct{ s *client.Session }

// Dial opens an SDK session with the profile and waits until it is
// connected (Welcome received). Nothing else is set but the client id
// (every session of a run has its own), the heartbeat a heartbeat case asks
// for, and callbacks that only observe (OnRTT, Observer): the send buffer,
// its policy, the retries and the receive window are the SDK's defaults.
func Dial(ctx context.Context, addr string, opts system.ClientOptions) (system.Client, error) {
	var more []client.Option
	if f := opts.OnRTT; f != nil {
		more = append(more, client.WithOnRTT(func(_ string, rtt time.Duration) { f(rtt) }))
	}
	if o := opts.Observer; o != nil {
		more = append(more,
			client.WithOnState(func(c client.StateChange) {
				if c.State == client.StateReconnecting {
					why := "stream ended"
					if c.Err != nil {
						why = c.Err.Error()
					}
					o.Cut(why)
				}
				if c.Lost != nil && c.Lost.Last >= c.Lost.First {
					o.Gap(c.Lost.Last - c.Lost.First + 1)
				}
			}),
			client.WithOnSendError(func(_ client.Message, err error) { o.SendFailed(err.Error()) }))
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
	if opts.Dialer != nil {
		copts = append(copts, client.WithDialOptions(grpc.WithContextDialer(opts.Dialer)))
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

// SendTo sends payload to the session of clientID (Relayer).
func (c *tclient) SendTo(ctx context.Context, clientID string, payload []byte) error {
	return c.s.Send(ctx, client.Message{ClientID: clientID, Payload: payload})
}

// SendWait sends payload to the bench topic and waits for the server's
// ack (Waiter).
func (c *tclient) SendWait(ctx context.Context, payload []byte) error {
	return c.s.SendWait(ctx, client.Message{Topic: topic, Payload: payload})
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

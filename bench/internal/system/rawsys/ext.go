package rawsys

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/bench/internal/system"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Ext returns the raw twin's capabilities for the idle, resume and
// detection scenarios.
func Ext() system.Ext {
	return system.Ext{
		NewServer:    NewServerWithHooks,
		DialMux:      DialMux,
		DialObserved: DialObserved,
		Resumes:      false,
		Bound: func(o system.ServerOptions) (time.Duration, time.Duration) {
			// The raw server has only grpc keepalive: a ping after Time of
			// silence, the transport closed Timeout later.
			return o.Profile.Server.Time + o.Profile.Server.Timeout, o.Profile.Server.Time
		},
	}
}

// NewServerWithHooks is NewServer with the scenario hooks: OnSession when
// a stream's handler starts, OnDown when it ends on an error, OnMessage
// before the App.
func NewServerWithHooks(app *system.App, opts system.ServerOptions, hooks system.Hooks) (system.Server, error) {
	gopts := append(opts.Profile.ServerOptions(),
		grpc.MaxRecvMsgSize(server.DefaultMaxMessageBytes+64<<10))
	gs := grpc.NewServer(gopts...)
	desc := serviceDesc
	desc.Streams = []grpc.StreamDesc{desc.Streams[0]}
	desc.Streams[0].Handler = func(_ any, ss grpc.ServerStream) error { return serveHooked(app, hooks, ss) }
	gs.RegisterService(&desc, struct{}{})
	return &rawServer{gs: gs}, nil
}

func serveHooked(app *system.App, hooks system.Hooks, ss grpc.ServerStream) error {
	if hooks.OnSession != nil {
		hooks.OnSession(false)
	}
	c := &conn{ss: ss}
	p := app.Open(c)
	defer p.Close()
	for {
		req := new(tetherv1.ConnectRequest)
		if err := ss.RecvMsg(req); err != nil {
			if hooks.OnDown != nil && err != io.EOF {
				hooks.OnDown(err.Error())
			}
			return nil
		}
		switch f := req.GetFrame().(type) {
		case *tetherv1.ConnectRequest_Message:
			if hooks.OnMessage != nil && hooks.OnMessage(c, f.Message.GetPayload()) {
				continue
			}
			p.OnMessage(f.Message.GetPayload())
		case *tetherv1.ConnectRequest_Ping:
			_ = c.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{Id: f.Ping.GetId(), SentAt: f.Ping.GetSentAt()}}})
		}
	}
}

// observed reports the first Recv error of a raw client to onDown.
type observed struct {
	system.Client
	once   sync.Once
	onDown func(string)
}

func (o *observed) Recv(ctx context.Context) ([]byte, error) {
	b, err := o.Client.Recv(ctx)
	if err != nil && err != system.ErrClosed && ctx.Err() == nil {
		o.once.Do(func() { o.onDown(err.Error()) })
	}
	return b, err
}

// DialObserved is Dial whose Recv reports the connection's loss to onDown
// (the raw client notices it when its stream fails: grpc keepalive, RST).
// backoffBase is ignored: a raw client does not reconnect by itself.
func DialObserved(ctx context.Context, addr string, opts system.ClientOptions, _ time.Duration, onDown func(why string)) (system.Client, error) {
	c, err := Dial(ctx, addr, opts)
	if err != nil || onDown == nil {
		return c, err
	}
	return &observed{Client: c, onDown: onDown}, nil
}

// DialMux opens one ClientConn whose sessions (Mux.Open) are raw streams,
// each with an app-level ping at opts.Heartbeat (the twin of tether's
// heartbeat) and a reader that drops what arrives.
func DialMux(_ context.Context, addr string, opts system.ClientOptions) (system.Mux, error) {
	cc, err := system.ClientConn(addr, opts.Profile)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	return &rawMux{cc: cc, sctx: sctx, cancel: cancel, hb: opts.Heartbeat}, nil
}

func (m *rawMux) Open(ctx context.Context, _ string) error {
	stream, err := m.cc.NewStream(m.sctx, &serviceDesc.Streams[0], method, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("raw mux: open stream: %w", err)
	}
	c := &client{cc: m.cc, stream: stream, cancel: func() {}}
	if err := c.Send(ctx, system.Payload(system.KindEcho, 1)); err != nil {
		return err
	}
	if _, err := c.Recv(ctx); err != nil {
		return fmt.Errorf("raw mux: first round trip: %w", err)
	}
	if m.hb > 0 {
		hb := m.hb
		c.mu.Lock()
		c.timer = time.AfterFunc(hb, func() { c.ping(hb) })
		c.mu.Unlock()
	}
	m.mu.Lock()
	m.clients = append(m.clients, c)
	m.mu.Unlock()
	m.wg.Go(func() {
		for {
			if _, err := c.Recv(m.sctx); err != nil {
				return
			}
		}
	})
	return nil
}

type rawMux struct {
	cc     *grpc.ClientConn
	sctx   context.Context
	cancel context.CancelFunc
	hb     time.Duration
	wg     sync.WaitGroup

	mu      sync.Mutex
	clients []*client
}

func (m *rawMux) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.clients {
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		c.mu.Unlock()
	}
	m.cancel()
	err := m.cc.Close()
	m.wg.Wait()
	return err
}

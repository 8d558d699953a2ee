// Package rawsys is the raw grpc-go twin: one bidi stream per session and
// no session layer (no seqs, acks, resume log, heartbeat sweep or health
// watch). It carries the same protobuf messages as tether
// (tetherv1.ConnectRequest / ConnectResponse) through a hand-written
// grpc.ServiceDesc, with the same profile's grpc and TCP options.
package rawsys

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetherhq/tether/bench/internal/system"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// method is the raw service's only method.
const method = "/bench.raw.v1.RawService/Connect"

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "bench.raw.v1.RawService",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Connect",
		Handler:       nil, // set per server: it closes over the App
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// System returns the raw grpc-go system.
func System() system.System {
	return system.System{
		Name:      "raw",
		Describe:  "raw grpc-go bidi stream, same protobuf messages and profile options, no session layer",
		NewServer: NewServer,
		Dial:      Dial,
	}
}

type rawServer struct {
	gs *grpc.Server
}

// NewServer builds the raw server: the profile's keepalive options and
// tether's receive limit, nothing else.
func NewServer(app *system.App, opts system.ServerOptions) (system.Server, error) {
	gopts := append(opts.Profile.ServerOptions(),
		grpc.MaxRecvMsgSize(server.DefaultMaxMessageBytes+64<<10)) // tether's limit for the same frames
	gs := grpc.NewServer(gopts...)
	desc := serviceDesc
	desc.Streams = []grpc.StreamDesc{desc.Streams[0]}
	desc.Streams[0].Handler = func(_ any, ss grpc.ServerStream) error { return serve(app, ss) }
	gs.RegisterService(&desc, struct{}{})
	return &rawServer{gs: gs}, nil
}

func (s *rawServer) Serve(lis net.Listener) error { return s.gs.Serve(lis) }
func (s *rawServer) Stop()                        { s.gs.Stop() }

// conn serialises Sends on one server stream.
type conn struct {
	mu sync.Mutex
	ss grpc.ServerStream
}

func (c *conn) Send(payload []byte) error {
	return c.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: &tetherv1.ServerMessage{Payload: payload}}})
}

func (c *conn) send(f *tetherv1.ConnectResponse) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ss.SendMsg(f)
}

// serve is the raw handler: business messages go to the App, pings are
// answered with pongs.
func serve(app *system.App, ss grpc.ServerStream) error {
	c := &conn{ss: ss}
	p := app.Open(c)
	defer p.Close()
	for {
		req := new(tetherv1.ConnectRequest)
		if err := ss.RecvMsg(req); err != nil {
			return nil
		}
		switch f := req.GetFrame().(type) {
		case *tetherv1.ConnectRequest_Message:
			p.OnMessage(f.Message.GetPayload())
		case *tetherv1.ConnectRequest_Ping:
			_ = c.send(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{Id: f.Ping.GetId(), SentAt: f.Ping.GetSentAt()}}})
		}
	}
}

// client is one raw session: its own ClientConn and one stream.
type client struct {
	cc     *grpc.ClientConn
	stream grpc.ClientStream
	cancel context.CancelFunc
	onRTT  func(time.Duration)

	mu    sync.Mutex // serialises SendMsg (business messages and pings)
	timer *time.Timer
	pings uint64
}

// Dial opens a ClientConn with the profile's keepalive and TCP dialer, and
// one stream on it.
func Dial(ctx context.Context, addr string, opts system.ClientOptions) (system.Client, error) {
	cc, err := system.ClientConn(addr, opts.Profile)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := cc.NewStream(sctx, &serviceDesc.Streams[0], method, grpc.WaitForReady(true))
	if err != nil {
		cancel()
		cc.Close()
		return nil, fmt.Errorf("raw: open stream: %w", err)
	}
	c := &client{cc: cc, stream: stream, cancel: cancel, onRTT: opts.OnRTT}
	if opts.Heartbeat > 0 {
		c.mu.Lock()
		c.timer = time.AfterFunc(opts.Heartbeat, func() { c.ping(opts.Heartbeat) })
		c.mu.Unlock()
	}
	// Like tether's Connect (which waits for Welcome), return once a round
	// trip on the stream has completed.
	if err := c.Send(ctx, system.Payload(system.KindEcho, 1)); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Recv(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("raw: first round trip: %w", err)
	}
	return c, nil
}

// ping is the raw app-level heartbeat: a Ping frame every interval,
// answered by the server with a Pong carrying the ping's timestamp.
func (c *client) ping(interval time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer == nil {
		return
	}
	c.pings++
	_ = c.stream.SendMsg(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: c.pings, SentAt: timestamppb.Now()}}})
	c.timer.Reset(interval)
}

func (c *client) Send(_ context.Context, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stream.SendMsg(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{Payload: payload}}})
}

func (c *client) Recv(ctx context.Context) ([]byte, error) {
	for {
		f := new(tetherv1.ConnectResponse)
		if err := c.stream.RecvMsg(f); err != nil {
			if err == io.EOF {
				return nil, system.ErrClosed
			}
			return nil, err
		}
		switch x := f.GetFrame().(type) {
		case *tetherv1.ConnectResponse_Message:
			return x.Message.GetPayload(), nil
		case *tetherv1.ConnectResponse_Pong:
			if c.onRTT != nil && x.Pong.GetSentAt().IsValid() {
				c.onRTT(time.Since(x.Pong.GetSentAt().AsTime()))
			}
		}
	}
}

func (c *client) Close() error {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	c.cancel()
	return c.cc.Close()
}

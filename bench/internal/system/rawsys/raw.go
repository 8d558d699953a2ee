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
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetherhq/tether/bench/internal/system"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// method is the raw service's stream; unaryMethod its unary round trip
// (the twin of tether's SendWait: one message, one answer).
const (
	method      = "/bench.raw.v1.RawService/Connect"
	unaryMethod = "/bench.raw.v1.RawService/Call"
)

// idHeader carries a raw session's client id in its stream's metadata, so
// that other sessions can address it (relay).
const idHeader = "bench-client-id"

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "bench.raw.v1.RawService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler:    call,
	}},
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

// registry is the raw server's streams by client id, for relaying.
type registry struct {
	mu    sync.Mutex
	conns map[string]*conn
}

func (r *registry) add(id string, c *conn) {
	if id == "" {
		return
	}
	r.mu.Lock()
	r.conns[id] = c
	r.mu.Unlock()
}

func (r *registry) remove(id string, c *conn) {
	r.mu.Lock()
	if r.conns[id] == c {
		delete(r.conns, id)
	}
	r.mu.Unlock()
}

func (r *registry) get(id string) *conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[id]
}

// call is the unary round trip: it decodes one ConnectRequest and answers
// with an Ack frame carrying the message's seq.
func call(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	req := new(tetherv1.ConnectRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ack{Ack: &tetherv1.Ack{Seq: req.GetMessage().GetSeq()}}}, nil
}

// NewServer builds the raw server: the profile's keepalive options and
// tether's receive limit, nothing else.
func NewServer(app *system.App, opts system.ServerOptions) (system.Server, error) {
	gopts := append(opts.Profile.ServerOptions(),
		grpc.MaxRecvMsgSize(server.DefaultMaxMessageBytes+64<<10)) // tether's limit for the same frames
	gs := grpc.NewServer(gopts...)
	desc := serviceDesc
	desc.Streams = []grpc.StreamDesc{desc.Streams[0]}
	reg := &registry{conns: map[string]*conn{}}
	desc.Streams[0].Handler = func(_ any, ss grpc.ServerStream) error { return serve(app, reg, ss) }
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

// serve is the raw handler: business messages go to the App, or, when
// addressed to a client id, to that client's stream (written from this
// stream's handler: when the target does not read, HTTP/2 flow control
// stops this handler, and so the sender); pings are answered with pongs.
func serve(app *system.App, reg *registry, ss grpc.ServerStream) error {
	c := &conn{ss: ss}
	var id string
	if md, ok := metadata.FromIncomingContext(ss.Context()); ok {
		if v := md.Get(idHeader); len(v) > 0 {
			id = v[0]
		}
	}
	reg.add(id, c)
	defer reg.remove(id, c)
	p := app.Open(c)
	defer p.Close()
	for {
		req := new(tetherv1.ConnectRequest)
		if err := ss.RecvMsg(req); err != nil {
			return nil
		}
		switch f := req.GetFrame().(type) {
		case *tetherv1.ConnectRequest_Message:
			if to := f.Message.GetClientId(); to != "" {
				if t := reg.get(to); t != nil {
					_ = t.Send(f.Message.GetPayload())
				}
				continue
			}
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
	if opts.ID != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, idHeader, opts.ID)
	}
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

// SendTo sends payload on the stream, addressed to clientID: the server
// writes it to that client's stream (Relayer).
func (c *client) SendTo(_ context.Context, clientID string, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stream.SendMsg(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Target: &tetherv1.ClientMessage_ClientId{ClientId: clientID}, Payload: payload}}})
}

// SendWait is a unary call carrying payload, on the session's ClientConn
// (Waiter): raw grpc-go's round trip for one message.
func (c *client) SendWait(ctx context.Context, payload []byte) error {
	req := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{Payload: payload}}}
	return c.cc.Invoke(ctx, unaryMethod, req, new(tetherv1.ConnectResponse))
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

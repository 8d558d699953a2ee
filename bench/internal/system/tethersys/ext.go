package tethersys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// Ext returns tether's capabilities for the idle, resume and detection
// scenarios.
func Ext() system.Ext {
	return system.Ext{
		NewServer:    NewServerWithHooks,
		DialMux:      DialMux,
		DialObserved: DialObserved,
		Resumes:      true,
		Replays:      true,
		Bound: func(o system.ServerOptions) (time.Duration, time.Duration) {
			hb := o.Profile.Heartbeat
			return hb.Interval*time.Duration(hb.Misses) + hb.Grace, hb.Interval * time.Duration(hb.Misses-1)
		},
	}
}

// NewServerWithHooks is NewServer (same options) with the scenario hooks:
// OnSession and OnSessionID from OnConnect, OnDown from the server's "session detached"
// log event (the moment the server gives up on a stream), OnMessage
// before the App.
func NewServerWithHooks(app *system.App, opts system.ServerOptions, hooks system.Hooks) (system.Server, error) {
	o, err := options(&hookHandler{handler: handler{app: app}, hooks: hooks}, opts)
	if err != nil {
		return nil, err
	}
	// The logger only turns the "session detached" event into OnDown.
	srv, err := server.New(append(o, server.WithLogger(slog.New(&detachLog{onDown: hooks.OnDown})))...)
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

type hookHandler struct {
	handler
	hooks system.Hooks
}

func (h *hookHandler) OnConnect(ctx context.Context, s *server.Session) error {
	if f := h.hooks.OnSession; f != nil {
		f(s.Resumed())
	}
	if f := h.hooks.OnSessionID; f != nil {
		f(s.ClientID(), s.Resumed())
	}
	return h.handler.OnConnect(ctx, s)
}

func (h *hookHandler) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	if f := h.hooks.OnMessage; f != nil && f(conn{s}, m.Payload) {
		return nil
	}
	return h.handler.OnMessage(ctx, s, m)
}

// detachLog is a slog.Handler that turns "tether: session detached"
// into OnDown and drops everything else.
type detachLog struct {
	onDown func(why string)
}

func (d *detachLog) Enabled(context.Context, slog.Level) bool { return d.onDown != nil }
func (d *detachLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "tether: session detached" {
		return nil
	}
	why := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "why" {
			why = a.Value.String()
		}
		return true
	})
	d.onDown(why)
	return nil
}
func (d *detachLog) WithAttrs([]slog.Attr) slog.Handler { return d }
func (d *detachLog) WithGroup(string) slog.Handler      { return d }

// DialObserved is Dial with a state callback: onDown runs when the SDK
// leaves StateConnected for StateReconnecting.
func DialObserved(ctx context.Context, addr string, opts system.ClientOptions, backoffBase time.Duration, onDown func(why string)) (system.Client, error) {
	var copts []client.Option
	if backoffBase > 0 {
		bo := backoff.DefaultConfig()
		bo.Base = backoffBase
		copts = append(copts, client.WithBackoff(bo))
	}
	if onDown != nil {
		copts = append(copts, client.WithOnState(func(c client.StateChange) {
			if c.State == client.StateReconnecting {
				why := ""
				if c.Err != nil {
					why = c.Err.Error()
				}
				onDown(why)
			}
		}))
	}
	return dial(ctx, addr, opts, copts...)
}

// DialMux opens one ClientConn whose sessions (Mux.Open) are driven by
// the protocol directly (not the SDK), the way the SDK drives them: each
// stream sends Hello, waits for Welcome, pings half an interval later and
// then every granted interval (as raw's twin pings at opts.Heartbeat), answers the
// server's pings and acks every message. One goroutine per stream (its
// reader) and one timer.
func DialMux(_ context.Context, addr string, opts system.ClientOptions) (system.Mux, error) {
	cc, err := system.ClientConn(addr, opts.Profile)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	return &mux{cc: cc, tc: tetherv1.NewTetherServiceClient(cc), sctx: sctx, cancel: cancel, hb: opts.Heartbeat}, nil
}

func (m *mux) Open(ctx context.Context, id string) error {
	st, err := m.tc.Connect(m.sctx, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("tether mux: open stream: %w", err)
	}
	hello := &tetherv1.Hello{ClientId: id}
	if m.hb > 0 {
		hello.HeartbeatInterval = durationpb.New(m.hb)
	}
	if err := st.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("tether mux: hello: %w", err)
	}
	f, err := st.Recv()
	if err != nil || f.GetWelcome() == nil {
		return fmt.Errorf("tether mux: no welcome (%v, %v)", f, err)
	}
	ms := &muxStream{st: st, iv: f.GetWelcome().GetHeartbeatInterval().AsDuration()}
	if ms.iv > 0 {
		ms.mu.Lock()
		ms.timer = time.AfterFunc(ms.iv/2, ms.ping) // the SDK's first ping: half an interval after Welcome
		ms.mu.Unlock()
	}
	m.mu.Lock()
	m.streams = append(m.streams, ms)
	m.mu.Unlock()
	m.wg.Go(ms.read)
	return ctx.Err()
}

type mux struct {
	cc     *grpc.ClientConn
	tc     tetherv1.TetherServiceClient
	sctx   context.Context
	cancel context.CancelFunc
	hb     time.Duration
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams []*muxStream
}

// muxStream is one session of a mux: Send is serialized between its
// reader and its ping timer.
type muxStream struct {
	st    grpc.BidiStreamingClient[tetherv1.ConnectRequest, tetherv1.ConnectResponse]
	iv    time.Duration
	mu    sync.Mutex
	timer *time.Timer
	pings uint64
	done  bool
}

func (s *muxStream) send(f *tetherv1.ConnectRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		_ = s.st.Send(f)
	}
}

// ping sends a ping and arms the next one an interval later.
func (s *muxStream) ping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.pings++
	_ = s.st.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: s.pings, SentAt: timestamppb.Now()}}})
	if s.iv > 0 {
		s.timer = time.AfterFunc(s.iv, s.ping)
	}
}

func (s *muxStream) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

// read answers pings and acks messages until the stream ends.
func (s *muxStream) read() {
	defer s.stop()
	for {
		f, err := s.st.Recv()
		if err != nil {
			return
		}
		switch x := f.GetFrame().(type) {
		case *tetherv1.ConnectResponse_Ping:
			s.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: x.Ping.GetId(), SentAt: x.Ping.GetSentAt()}}})
		case *tetherv1.ConnectResponse_Message:
			s.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: x.Message.GetSeq()}}})
		case *tetherv1.ConnectResponse_GoAway:
			return
		}
	}
}

func (m *mux) Close() error {
	m.mu.Lock()
	for _, s := range m.streams {
		s.stop()
	}
	m.mu.Unlock()
	m.cancel()
	err := m.cc.Close()
	m.wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Package centrifugesys is Centrifuge under test: a centrifuge.Node
// (github.com/centrifugal/centrifuge, memory broker, default options) in
// the server process behind its WebSocket handler, and centrifuge-go
// clients speaking the protobuf protocol (centrifuge-protobuf: the same
// binary codec family as tether and the raw twin; the JSON protocol would
// also need every payload to be valid JSON).
//
// The App's semantics map onto what Centrifuge users write:
//   - server→client (App Conn.Send): Node.Publish to the session's
//     personal channel ("personal:<client id>"), to which the connection
//     is subscribed server-side at connect; Centrifuge's default channel
//     keeps no history, so nothing is kept for a resume;
//   - client→server: the client's asynchronous Send, handled in
//     Client.OnMessage by the App;
//   - round trip (KindEcho): a client RPC, answered from OnRPC with the
//     App's echo;
//   - topics (fan-out): client-side subscriptions, Node.Publish;
//   - heartbeat: Centrifuge's own server ping / client pong, with the
//     interval the client asks for set per connection in ConnectReply
//     (PongTimeout scaled like the defaults, 25 s : 10 s); the RTT is what
//     the server measured (Client.LatestPingPongLatency), sent to the
//     client in an asynchronous message (see rttSweep).
package centrifugesys

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge"
	centrifugego "github.com/centrifugal/centrifuge-go"

	"github.com/tetherhq/tether/bench/internal/system"
)

// path is where the WebSocket handler listens (Centrifugo's).
const path = "/connection/websocket"

// kindRTT carries a heartbeat RTT sample (8 bytes of nanoseconds) from the
// server to the client; the client reports it to OnRTT and drops it.
const kindRTT byte = 'r'

// System returns the Centrifuge system.
func System() system.System {
	return system.System{
		Name:      "centrifuge",
		Describe:  "centrifuge v0.40.1 Node (memory broker, defaults) over WebSocket, centrifuge-go v0.12.1 protobuf clients",
		NewServer: NewServer,
		Dial:      Dial,
		// Node.Publish never blocks, and a client whose write queue
		// overflows is disconnected: a pusher must pace.
		NeedsPushWindow: true,
	}
}

type server struct {
	node *centrifuge.Node
	hs   *http.Server

	mu      sync.Mutex
	hb      map[*centrifuge.Client]*hbState // connections that asked for a heartbeat
	sweeper bool
	stop    chan struct{}
}

type hbState struct {
	interval time.Duration
	last     time.Duration
}

// connectData is what a client sends in its connect command: its id and
// the heartbeat interval it asks for (0: Centrifuge's default).
func connectData(id string, hb time.Duration) []byte {
	b := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(b, uint64(hb))
	return append(b, id...)
}

func parseConnectData(b []byte) (string, time.Duration, error) {
	if len(b) < 8 {
		return "", 0, errors.New("centrifugesys: short connect data")
	}
	return string(b[8:]), time.Duration(binary.BigEndian.Uint64(b)), nil
}

// hbKey keys the heartbeat interval a connection asked for in its
// context.
type hbKey struct{}

func personal(id string) string { return "personal:" + id }

// NewServer builds a Node with default options and the App's handlers.
func NewServer(app *system.App, opts system.ServerOptions) (system.Server, error) {
	return NewServerWithHooks(app, opts, system.Hooks{})
}

// NewServerWithHooks is NewServer with the scenario hooks: OnSession when
// a client connects, OnDown when a connection ends for any reason but the
// client's own close, OnMessage before the App.
func NewServerWithHooks(app *system.App, _ system.ServerOptions, hooks system.Hooks) (system.Server, error) {
	node, err := centrifuge.New(centrifuge.Config{})
	if err != nil {
		return nil, err
	}
	s := &server{node: node, hb: map[*centrifuge.Client]*hbState{}, stop: make(chan struct{})}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		id, hb, err := parseConnectData(e.Data)
		if err != nil {
			return centrifuge.ConnectReply{}, centrifuge.ErrorBadRequest
		}
		r := centrifuge.ConnectReply{
			Context:       context.WithValue(ctx, hbKey{}, hb),
			Credentials:   &centrifuge.Credentials{UserID: id},
			Subscriptions: map[string]centrifuge.SubscribeOptions{personal(id): {}},
		}
		if hb > 0 {
			r.PingPongConfig = &centrifuge.PingPongConfig{PingInterval: hb, PongTimeout: hb * 10 / 25}
		}
		return r, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		if hooks.OnSession != nil {
			hooks.OnSession(false)
		}
		cc := &conn{node: node, channel: personal(c.UserID())}
		p := app.Open(cc)
		c.OnMessage(func(e centrifuge.MessageEvent) {
			if hooks.OnMessage != nil && hooks.OnMessage(cc, e.Data) {
				return
			}
			p.OnMessage(e.Data)
		})
		c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
			cb(centrifuge.RPCReply{Data: cc.call(p, e.Data)}, nil)
		})
		c.OnSubscribe(func(_ centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
		c.OnDisconnect(func(e centrifuge.DisconnectEvent) {
			if hooks.OnDown != nil && e.Code != centrifuge.DisconnectConnectionClosed.Code {
				hooks.OnDown(e.Reason)
			}
			s.mu.Lock()
			delete(s.hb, c)
			s.mu.Unlock()
			p.Close()
		})
		if hb, _ := c.Context().Value(hbKey{}).(time.Duration); hb > 0 {
			s.watch(c, hb)
		}
	})
	if err := node.Run(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(path, centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}))
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

func (s *server) Serve(lis net.Listener) error {
	if err := s.hs.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *server) Stop() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.node.Shutdown(ctx)
	_ = s.hs.Close()
}

// PublishTopic publishes payload to the channel topic (Node.Publish,
// memory broker, no history).
func (s *server) PublishTopic(topic string, payload []byte) error {
	_, err := s.node.Publish(topic, payload)
	return err
}

// watch registers a connection that asked for a heartbeat with the RTT
// sweep.
func (s *server) watch(c *centrifuge.Client, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hb[c] = &hbState{interval: interval}
	if !s.sweeper {
		s.sweeper = true
		go s.rttSweep(interval)
	}
}

// rttSweep hands the ping/pong RTT that Centrifuge measured on the server
// (it records one per pong, at the pong check) to each client, every half
// interval, in one asynchronous message per new sample. Centrifuge keeps
// the RTT on the server only; this delivery costs one small write per
// heartbeat, batched in one wake-up, which the heartbeat's server CPU
// figure includes.
func (s *server) rttSweep(interval time.Duration) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		for c, st := range s.hb {
			if d, ok := c.LatestPingPongLatency(); ok && d != st.last {
				st.last = d
				b := make([]byte, 9)
				b[0] = kindRTT
				binary.BigEndian.PutUint64(b[1:], uint64(d))
				_ = c.Send(b)
			}
		}
		s.mu.Unlock()
	}
}

// conn is the App's side of one connection: Send publishes to its
// personal channel, except the App's reply to an RPC, which call takes.
type conn struct {
	node    *centrifuge.Node
	channel string

	mu    sync.Mutex
	req   []byte // the RPC being handled
	reply []byte
}

func (c *conn) Send(payload []byte) error {
	c.mu.Lock()
	if c.req != nil && len(payload) > 0 && len(c.req) == len(payload) && &c.req[0] == &payload[0] {
		c.reply = payload
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	_, err := c.node.Publish(c.channel, payload)
	return err
}

// call hands an RPC's data to the App and returns what the App sent back
// for it (its echo), as the RPC's reply.
func (c *conn) call(p *system.Peer, data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	c.mu.Lock()
	c.req, c.reply = data, nil
	c.mu.Unlock()
	p.OnMessage(data)
	c.mu.Lock()
	reply := c.reply
	c.req, c.reply = nil, nil
	c.mu.Unlock()
	return reply
}

// client is one centrifuge-go connection.
type client struct {
	c     *centrifugego.Client
	in    chan []byte
	done  chan struct{}
	once  sync.Once
	onRTT func(time.Duration)

	mu   sync.Mutex
	subs map[string]*centrifugego.Subscription

	// sendMu keeps Close from running during a Send: centrifuge-go
	// v0.12.1's Close clears the transport that an asynchronous Send
	// reads without a lock (a data race the race detector reports).
	sendMu sync.RWMutex
}

// Dial connects a protobuf client with the profile's TCP dialer and waits
// until it is connected (and subscribed to its personal channel).
func Dial(ctx context.Context, addr string, opts system.ClientOptions) (system.Client, error) {
	c, err := dial(ctx, addr, opts, nil, nil)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dial is Dial with the client's configuration adjusted by tune and its
// event handlers added by observe before it connects, each if set.
func dial(ctx context.Context, addr string, opts system.ClientOptions, tune func(*centrifugego.Config), observe func(*centrifugego.Client)) (*client, error) {
	d := opts.Profile.Dialer()
	c := &client{in: make(chan []byte, 4096), done: make(chan struct{}), onRTT: opts.OnRTT, subs: map[string]*centrifugego.Subscription{}}
	cfg := centrifugego.Config{
		Name:           "tether-bench",
		Data:           connectData(opts.ID, opts.Heartbeat),
		NetDialContext: d.DialContext,
	}
	if tune != nil {
		tune(&cfg)
	}
	c.c = centrifugego.NewProtobufClient("ws://"+addr+path, cfg)
	subscribed := make(chan struct{})
	var subOnce sync.Once
	c.c.OnSubscribed(func(e centrifugego.ServerSubscribedEvent) {
		if e.Channel == personal(opts.ID) {
			subOnce.Do(func() { close(subscribed) })
		}
	})
	c.c.OnPublication(func(e centrifugego.ServerPublicationEvent) { c.deliver(e.Data) })
	c.c.OnMessage(func(e centrifugego.MessageEvent) {
		if len(e.Data) == 9 && e.Data[0] == kindRTT {
			if c.onRTT != nil {
				c.onRTT(time.Duration(binary.BigEndian.Uint64(e.Data[1:])))
			}
			return
		}
		c.deliver(e.Data)
	})
	failed := make(chan error, 1)
	c.c.OnError(func(e centrifugego.ErrorEvent) {
		select {
		case failed <- e.Error:
		default:
		}
	})
	if observe != nil {
		observe(c.c)
	}
	if err := c.c.Connect(); err != nil {
		c.Close()
		return nil, err
	}
	select {
	case <-subscribed:
		return c, nil
	case err := <-failed:
		c.Close()
		return nil, fmt.Errorf("centrifuge: connect: %w", err)
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("centrifuge: connect: %w", ctx.Err())
	}
}

func (c *client) deliver(b []byte) {
	select {
	case c.in <- b:
	case <-c.done:
	}
}

// Send sends a round-trip request as an RPC (its reply goes to Recv) and
// everything else as an asynchronous message.
func (c *client) Send(ctx context.Context, payload []byte) error {
	if len(payload) > 0 && payload[0] == system.KindEcho {
		r, err := c.c.RPC(ctx, "app", payload)
		if err != nil {
			return err
		}
		c.deliver(r.Data)
		return nil
	}
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	select {
	case <-c.done:
		return system.ErrClosed
	default:
	}
	return c.c.Send(ctx, payload)
}

func (c *client) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	case <-c.done:
		return nil, system.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Subscribe subscribes to the channel topic client-side and returns once
// the server confirmed it.
func (c *client) Subscribe(ctx context.Context, topic string) error {
	sub, err := c.c.NewSubscription(topic)
	if err != nil {
		return err
	}
	ok := make(chan struct{})
	failed := make(chan error, 1)
	var once sync.Once
	sub.OnSubscribed(func(centrifugego.SubscribedEvent) { once.Do(func() { close(ok) }) })
	sub.OnError(func(e centrifugego.SubscriptionErrorEvent) {
		select {
		case failed <- e.Error:
		default:
		}
	})
	sub.OnPublication(func(e centrifugego.PublicationEvent) { c.deliver(e.Data) })
	if err := sub.Subscribe(); err != nil {
		return err
	}
	c.mu.Lock()
	c.subs[topic] = sub
	c.mu.Unlock()
	select {
	case <-ok:
		return nil
	case err := <-failed:
		return fmt.Errorf("centrifuge: subscribe %s: %w", topic, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *client) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		c.c.Close()
	})
	return nil
}

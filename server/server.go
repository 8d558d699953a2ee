package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/frames"
	"github.com/tetherhq/tether/internal/h2window"
)

// ServiceName is the health-checked name of the session service.
const ServiceName = "tether.v1.TetherService"

// Server holds sessions and serves TetherService, AdminService and
// grpc.health.v1 on a caller's *grpc.Server. It is safe for concurrent use.
type Server struct {
	cfg     *config
	broker  broker.Broker
	health  *health.Server
	metrics *metrics

	// Lock order: Session.recvMu, then Session.mu, then Server.mu, then
	// stream.mu; never the other way round.
	mu        sync.RWMutex
	sessions  map[string]*Session
	byClient  map[string]sessionSet
	topics    map[string]sessionSet
	draining  bool
	closed    bool
	started   bool       // Start started the broker
	ended     []*Session // recently ended sessions, oldest first, for AdminService (see keepEndedLocked)
	gs        *grpc.Server
	brokerErr error // why the broker does not work, if it reports so
	// brokerDown mirrors brokerErr != nil for the message path, which
	// refuses client messages at once while the broker does not work.
	brokerDown atomic.Bool
	// brokerEdge is when the broker last failed or came back (unix
	// nanoseconds; see recentWide).
	brokerEdge atomic.Int64
	// released holds the sessions another node took over whose
	// eviction is still to be answered (see receiver.Quiesce).
	released sync.Map

	live        atomic.Int64  // sessions with a stream attached
	suspended   atomic.Int64  // sessions suspended by their client (suspend.go)
	liveChanged chan struct{} // signalled when live drops
	startMu     sync.Mutex    // one Start at a time
	connAges    connAges      // when each connection's first stream started

	welcomeShared func() welcomeShared // what every Welcome shares (welcome.go)
}

// New validates the options and returns a Server. It does no I/O: Start
// starts the broker, and the server takes sessions once it is started and
// registered on a *grpc.Server that serves.
func New(opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	srv := &Server{
		cfg:      cfg,
		broker:   cfg.broker,
		health:   health.NewServer(),
		metrics:  newMetrics(),
		sessions: make(map[string]*Session),
		byClient: make(map[string]sessionSet),
		topics:   make(map[string]sessionSet),

		liveChanged: make(chan struct{}, 1),
	}
	srv.setServing(false)
	srv.welcomeShared = sync.OnceValue(srv.newWelcomeShared)
	srv.metrics.sessions = sessionGauges(srv)
	if cfg.registerer != nil {
		if err := srv.metrics.register(cfg.registerer); err != nil {
			return nil, fmt.Errorf("tether/server: WithRegisterer: %w", err)
		}
	}
	return srv, nil
}

// Start starts the broker (with NATS: connects its streams, which may take
// a while when NATS is slow to come up); ctx bounds it. Call it once, after
// New, before or after Register; until it returns nil, Connect refuses
// sessions with UNAVAILABLE and Ready reports the server not started. A
// Start that failed may be called again.
func (srv *Server) Start(ctx context.Context) error {
	srv.startMu.Lock()
	defer srv.startMu.Unlock()
	srv.mu.RLock()
	started, closed := srv.started, srv.closed
	srv.mu.RUnlock()
	switch {
	case closed:
		return errors.New("tether/server: Start after Close")
	case started:
		return errors.New("tether/server: already started")
	}
	var r broker.Receiver = receiver{srv}
	if srv.cfg.pipelining {
		r = quiescingReceiver{receiver{srv}}
	}
	if err := srv.broker.Start(ctx, srv.cfg.serverID, r); err != nil {
		return fmt.Errorf("tether/server: starting the broker: %w", err)
	}
	if hn, ok := srv.broker.(broker.HealthNotifier); ok {
		hn.NotifyHealth(srv.brokerHealth)
	}
	srv.mu.Lock()
	srv.started = true
	srv.mu.Unlock()
	srv.setServing(srv.Ready() == nil)
	return nil
}

// startedErr is the UNAVAILABLE status a session gets before Start.
func (srv *Server) startedErr() error {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	if !srv.started {
		return status.Error(codes.Unavailable, "the server is not started yet: reconnect later or to another backend")
	}
	return nil
}

// ID returns the server id announced in Welcome.
func (srv *Server) ID() string { return srv.cfg.serverID }

// GRPCServerOptions returns the grpc.ServerOptions the server expects: the
// profile's keepalive parameters and enforcement policy (with the
// MaxConnectionAge that a session's GoAway{MAX_AGE} comes before), the
// codec that ends a stream whose frame cannot be decoded or exceeds
// Limits.max_frame_bytes with INVALID_ARGUMENT (see frameCodec), and
// gRPC's own receive limit above it (see grpcRecvLimit), and fixed HTTP/2
// flow-control windows of 1 MiB per stream and 2 MiB per connection
// (grpc-go's bandwidth estimator, which they turn off, costs a PING round
// trip per sparse message; see internal/h2window). Pass them to
// grpc.NewServer; options after them replace them (window options replace
// the sizes; the estimator stays off).
func (srv *Server) GRPCServerOptions() []grpc.ServerOption {
	return append(append(srv.cfg.profile.ServerOptions(),
		grpc.MaxRecvMsgSize(srv.grpcRecvLimit()),
		grpc.ForceServerCodecV2(newFrameCodec(srv.maxFrameBytes())),
	), h2window.ServerOptions()...)
}

// maxFrameBytes leaves room for the frame around the largest payload.
func (srv *Server) maxFrameBytes() int { return srv.cfg.maxMessageBytes + frames.Overhead }

// Register registers TetherService, AdminService and grpc.health.v1 on gs
// and reports SERVING for "" and ServiceName once the server is started
// (see Start). Register once, before gs.Serve. Drain stops gs when it is
// done.
func (srv *Server) Register(gs *grpc.Server) {
	tetherv1.RegisterTetherServiceServer(gs, &service{srv: srv})
	tetherv1.RegisterAdminServiceServer(gs, &admin{srv: srv})
	healthpb.RegisterHealthServer(gs, srv.health)
	srv.mu.Lock()
	srv.gs = gs
	srv.mu.Unlock()
	srv.setServing(srv.Ready() == nil)
}

// Ready returns nil while the server takes new sessions, and otherwise why
// not: it is not registered or started yet, it drains or is closed, or its broker
// reports that it does not work (a NATS broker cut off from NATS). The
// grpc.health.v1 status follows it; tetherd's /readyz reports it.
func (srv *Server) Ready() error {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	switch {
	case srv.closed:
		return errors.New("the server is closed")
	case srv.draining:
		return errors.New("the server is draining")
	case srv.gs == nil:
		return errors.New("the server is not registered on a grpc.Server yet")
	case !srv.started:
		return errors.New("the server is not started yet (Server.Start)")
	case srv.brokerErr != nil:
		return fmt.Errorf("broker unavailable: %w", srv.brokerErr)
	}
	return nil
}

// brokerHealth follows the broker's health reports.
func (srv *Server) brokerHealth(err error) {
	srv.mu.Lock()
	changed := (err == nil) != (srv.brokerErr == nil)
	srv.brokerErr = err
	srv.brokerDown.Store(err != nil)
	if changed {
		srv.brokerEdge.Store(time.Now().UnixNano())
	}
	srv.mu.Unlock()
	if err != nil && changed {
		srv.cfg.logger.Warn("tether: the broker does not work; reporting NOT_SERVING", "err", err)
	} else if changed {
		srv.cfg.logger.Info("tether: the broker works again; reporting SERVING unless draining")
	}
	srv.setServing(srv.Ready() == nil)
}

func (srv *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	srv.health.SetServingStatus("", st)
	srv.health.SetServingStatus(ServiceName, st)
}

// Close ends every stream at once (no GoAway, no grace), closes every
// session and the broker. Use Drain for a graceful stop.
func (srv *Server) Close() error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil
	}
	srv.closed = true
	all := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	srv.health.Shutdown()
	for _, s := range all {
		err := status.Error(codes.Unavailable, "tether server closed; reconnect to another backend")
		if srv.broker.Shared() {
			s.leave(err, "server closed") // resumable on another node
		} else {
			s.close(err, "server closed")
		}
	}
	return srv.broker.Close()
}

// receiver hands broker deliveries to the local sessions.
type receiver struct{ srv *Server }

// Deliver queues m to every local session behind m.Target. It returns
// broker.ErrFull, having queued m nowhere, when m's only recipient refuses
// it (a full log under OverflowBackpressure).
func (r receiver) Deliver(m *broker.Message) (int, error) {
	srv := r.srv
	var one *Session
	var many []*Session
	srv.mu.RLock()
	switch m.Target.Kind {
	case broker.KindSession:
		one = srv.sessions[m.Target.Name]
	case broker.KindClient:
		many = collect(srv.byClient[m.Target.Name])
	case broker.KindTopic:
		many = collect(srv.topics[m.Target.Name])
	}
	srv.mu.RUnlock()
	if one != nil {
		many = append(many, one)
	}
	// A message with one recipient can wait with its sender when that
	// recipient's log is full; a fan-out cannot wait for its slowest.
	var sole *Session
	if len(many) == 1 && m.Target.Kind != broker.KindTopic {
		sole = many[0]
	}
	if len(many) > 1 && m.Encoded == nil {
		m.Encoded = encodeBody(m) // once for all: see encode.go
	}
	n := 0
	for _, s := range many {
		switch s.enqueue(m, s == sole) {
		case queued:
			n++
		case refused:
			return 0, broker.ErrFull
		}
	}
	return n, nil
}

func collect(set sessionSet) []*Session {
	if set.one != nil {
		return []*Session{set.one}
	}
	if len(set.many) == 0 {
		return nil
	}
	out := make([]*Session, 0, len(set.many))
	for s := range set.many {
		out = append(out, s)
	}
	return out
}

// index adds s to the hub's indexes; indexTopicLocked and unindex keep them.
func (srv *Server) indexLocked(s *Session) {
	srv.sessions[s.id] = s
	if s.clientID != "" {
		addTo(srv.byClient, s.clientID, s)
	}
}

func (srv *Server) unindexLocked(s *Session, topics []string) {
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	if s.clientID != "" {
		removeFrom(srv.byClient, s.clientID, s)
	}
	for _, t := range topics {
		removeFrom(srv.topics, t, s)
	}
}

// sessionSet is a set of sessions that keeps a lone member without a map:
// a client id has one session but for a moment, and many topics have one
// subscriber.
type sessionSet struct {
	one  *Session              // the only member, when many is nil
	many map[*Session]struct{} // every member, once there were two
}

func addTo(m map[string]sessionSet, k string, s *Session) {
	set := m[k]
	switch {
	case set.many != nil:
		set.many[s] = struct{}{}
	case set.one == nil || set.one == s:
		set.one = s
	default:
		set.many = map[*Session]struct{}{set.one: {}, s: {}}
		set.one = nil
	}
	m[k] = set
}

func removeFrom(m map[string]sessionSet, k string, s *Session) {
	set, ok := m[k]
	if !ok {
		return
	}
	if set.many != nil {
		delete(set.many, s)
	} else if set.one == s {
		set.one = nil
	}
	if set.one == nil && len(set.many) == 0 {
		delete(m, k)
		return
	}
	m[k] = set
}

// validTopic checks a topic name: 1 to 256 bytes of UTF-8 without spaces or
// control characters.
func validTopic(t string) error {
	if t == "" || len(t) > 256 || !utf8.ValidString(t) {
		return status.Errorf(codes.InvalidArgument, "topic %q: a topic is 1 to 256 bytes of UTF-8", truncate(t))
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f {
			return status.Errorf(codes.InvalidArgument, "topic %q: a topic may not contain spaces or control characters", truncate(t))
		}
	}
	return nil
}

func validAddress(a broker.Address) error {
	switch a.Kind {
	case broker.KindTopic:
		return validTopic(a.Name)
	case broker.KindSession, broker.KindClient:
		if a.Name == "" || len(a.Name) > 256 {
			return status.Errorf(codes.InvalidArgument, "%s id must be 1 to 256 bytes", a.Kind)
		}
		return nil
	}
	return status.Error(codes.InvalidArgument, "no target: set exactly one of topic, session_id or client_id")
}

func errTooLarge(n, max int) error {
	return status.Errorf(codes.InvalidArgument, "payload of %d bytes exceeds the limit of %d bytes (Welcome.limits.max_message_bytes): "+
		"split it, or raise the limit (tetherd --max-message-bytes, server.WithMaxMessageBytes)", n, max)
}

// truncate shortens s for a message, on a rune boundary (a cut inside a
// UTF-8 sequence would make the message unmarshalable).
func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}

// Bounds on a message's small fields.
const (
	maxIDBytes      = 256
	maxHeadersBytes = 16 << 10
)

// validExtras checks a message's ids, content type and headers: valid
// UTF-8 (the wire requires it) and bounded (the ids are remembered).
func validExtras(correlationID, idempotencyKey, contentType string, headers map[string]string) error {
	if err := validID("correlation_id", correlationID); err != nil {
		return err
	}
	if err := validID("idempotency_key", idempotencyKey); err != nil {
		return err
	}
	if err := validID("content_type", contentType); err != nil {
		return err
	}
	n := 0
	for k, v := range headers {
		n += len(k) + len(v)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return status.Errorf(codes.InvalidArgument, "header %q is not valid UTF-8", truncate(k))
		}
	}
	if n > maxHeadersBytes {
		return status.Errorf(codes.InvalidArgument, "headers total %d bytes; the limit is %d", n, maxHeadersBytes)
	}
	return nil
}

// validID checks one of a message's small string fields (on every
// message: no map, no allocation).
func validID(name, v string) error {
	if len(v) > maxIDBytes {
		return status.Errorf(codes.InvalidArgument, "%s is %d bytes; the limit is %d", name, len(v), maxIDBytes)
	}
	if !utf8.ValidString(v) {
		return status.Errorf(codes.InvalidArgument, "%s is not valid UTF-8", name)
	}
	return nil
}

// sessionID returns a new session id: 128 random bits in hex, so that an
// id never starts with "-" (command lines would read it as a flag).
func sessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand doc)
	return hex.EncodeToString(b)
}

// randomID returns n random bytes, base64url-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand doc)
	return base64.RawURLEncoding.EncodeToString(b)
}

// panicGuard logs a panic in a timer or background goroutine instead of
// crashing the process.
func (srv *Server) panicGuard(where string) {
	if p := recover(); p != nil {
		srv.cfg.logger.Error("tether: panic in "+where, "panic", p, "stack", string(debug.Stack()))
	}
}

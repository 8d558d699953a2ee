package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// awaitHello starts the reader and waits until it accepted Hello. (Its
// channel and timer are garbage once it returns: a stream lives long.)
func (st *stream) awaitHello(ctx context.Context) error {
	ready := make(chan error, 1)
	go func() {
		err := st.hello()
		ready <- err
		if err == nil {
			st.read()
		}
	}()
	d := st.srv.cfg.helloTimeout
	hello := time.NewTimer(d)
	defer hello.Stop()
	select {
	case err := <-ready:
		return err
	case <-hello.C:
		return status.Errorf(codes.DeadlineExceeded, "no hello within %v: the first frame must be hello", d)
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// hello receives Hello and opens or resumes its session.
func (st *stream) hello() (err error) {
	defer func() {
		if p := recover(); p != nil {
			st.srv.cfg.logger.Error("tether: panic in a session reader", "panic", p, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
			if st.sess != nil {
				st.sess.dropStream(st, err, "internal error")
			}
		}
	}()
	first, err := st.recv()
	if err != nil {
		return recvStatus(err)
	}
	st.srv.metrics.framesIn(first)
	h := first.GetHello()
	if h == nil {
		return status.Errorf(codes.InvalidArgument, "the first frame must be hello, got %s", frameName(first))
	}
	return st.srv.open(st, h)
}

// open handles Hello: it resumes or creates the session, attaches the
// stream and queues Welcome and the replay.
func (srv *Server) open(st *stream, h *tetherv1.Hello) error {
	ctx := st.ss.Context()
	if err := srv.validHello(h); err != nil {
		return err
	}
	if srv.isDraining() {
		return status.Error(codes.Unavailable, "the server is draining: reconnect to another backend")
	}
	authz := srv.cfg.authz
	if err := authz.Connect(ctx); err != nil {
		return err
	}
	for _, t := range h.GetTopics() {
		if err := authz.Subscribe(ctx, t); err != nil {
			return err
		}
	}
	principal := srv.cfg.principal(ctx)
	rs := tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED
	var s *Session
	var lost *tetherv1.SeqRange
	var token string
	if r := h.GetResume(); r != nil && r.GetSessionId() != "" {
		var err error
		if s, rs, lost, token, err = srv.resume(ctx, st, principal, r, h); err != nil {
			return err
		}
	}
	fresh := s == nil
	if fresh {
		var err error
		if s, token, err = srv.create(ctx, st, principal, h); err != nil {
			return err
		}
	}
	if rs != tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED {
		srv.metrics.resumes.WithLabelValues(resumeLabel(rs)).Inc()
	}
	if fresh {
		srv.metrics.opened.Inc()
	}
	if err := srv.cfg.handler.OnConnect(ctx, s); err != nil {
		s.dropStream(st, err, "rejected by the handler")
		if fresh {
			s.end("rejected by the handler: "+err.Error(), true)
		}
		return err
	}
	if srv.isDraining() {
		// Drain may have taken its snapshot before this stream attached.
		err := status.Error(codes.Unavailable, "the server is draining: reconnect to another backend")
		s.dropStream(st, err, "the server is draining")
		return err
	}
	if err := srv.welcome(st, s, rs, lost, token); err != nil {
		return err
	}
	p := srv.cfg.profile.Heartbeat
	st.expiresAt = authz.Expires(ctx)
	st.startLiveness(s.interval, p.Misses, p.Grace, srv.maxAgeAt(st.ss.Context()))
	return nil
}

func (srv *Server) validHello(h *tetherv1.Hello) error {
	if len(h.GetClientId()) > 256 {
		return status.Error(codes.InvalidArgument, "hello.client_id is longer than 256 bytes")
	}
	if !utf8.ValidString(h.GetClientId()) {
		return status.Error(codes.InvalidArgument, "hello.client_id is not valid UTF-8")
	}
	if len(h.GetTopics()) > srv.cfg.maxTopics {
		return status.Errorf(codes.InvalidArgument, "hello.topics has %d topics; the limit is %d (Welcome.limits.max_topics)", len(h.GetTopics()), srv.cfg.maxTopics)
	}
	for _, t := range h.GetTopics() {
		if err := validTopic(t); err != nil {
			return err
		}
	}
	if len(h.GetMetadata()) > 64 {
		return status.Errorf(codes.InvalidArgument, "hello.metadata has %d entries; the limit is 64", len(h.GetMetadata()))
	}
	if d := h.GetHeartbeatInterval(); d != nil && (!d.IsValid() || d.AsDuration() < 0) {
		return status.Error(codes.InvalidArgument, "hello.heartbeat_interval must be a valid, non-negative duration")
	}
	return nil
}

// grantInterval clamps the requested heartbeat interval into the profile's
// bounds; zero asks for the default.
func (srv *Server) grantInterval(h *tetherv1.Hello) time.Duration {
	hb := srv.cfg.profile.Heartbeat
	d := h.GetHeartbeatInterval().AsDuration()
	if d == 0 {
		return hb.Interval
	}
	return min(max(d, hb.Min), hb.Max)
}

// create makes a fresh session for Hello, taking over the client id's older
// session unless several are allowed.
func (srv *Server) create(ctx context.Context, st *stream, principal string, h *tetherv1.Hello) (*Session, string, error) {
	s := &Session{
		srv:       srv,
		id:        sessionID(),
		clientID:  h.GetClientId(),
		principal: principal,
		metadata:  h.GetMetadata(),
		created:   time.Now(),
		topics:    make(map[string]struct{}, len(h.GetTopics())),
		rec:       newRecorder(srv.cfg.recorderSize),
		interval:  srv.grantInterval(h),
	}
	s.log = srv.broker.Log(s.id)
	if srv.broker.Shared() && s.clientID != "" && srv.cfg.oneSessionPerID {
		if err := srv.takeOverClient(ctx, s); err != nil {
			return nil, "", err
		}
	}
	var old []*Session
	srv.mu.Lock()
	switch {
	case srv.draining || srv.closed:
		srv.mu.Unlock()
		return nil, "", status.Error(codes.Unavailable, "the server is draining: reconnect to another backend")
	case len(srv.sessions) >= srv.cfg.maxSessions:
		srv.mu.Unlock()
		return nil, "", status.Errorf(codes.Unavailable, "the server is at its limit of %d sessions: reconnect to another backend", srv.cfg.maxSessions)
	}
	if srv.cfg.oneSessionPerID && s.clientID != "" {
		old = collect(srv.byClient[s.clientID])
		for _, o := range old {
			if o.principal != principal {
				srv.mu.Unlock()
				return nil, "", status.Errorf(codes.PermissionDenied, "client id %q belongs to a session of another principal: choose another client id", truncate(s.clientID))
			}
		}
	}
	srv.indexLocked(s)
	srv.mu.Unlock()

	for _, o := range old {
		srv.metrics.takeovers.Inc()
		o.mu.Lock()
		o.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_TAKEN_OVER, detail: "a newer session " + s.id + " took over the client id"})
		o.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER, "a newer session took over this client id; do not reconnect", 0,
			status.Error(codes.Aborted, "client id taken over by a newer session"))
		o.mu.Unlock()
		o.close(status.Error(codes.Aborted, "client id taken over by a newer session"), "client id taken over by session "+s.id)
	}
	if err := srv.broker.Bind(ctx, broker.Session(s.id)); err != nil {
		s.end("broker bind failed", true)
		return nil, "", status.Errorf(codes.Unavailable, "registering the session failed: %s", withRetry(err))
	}
	if s.clientID != "" {
		if err := srv.broker.Bind(ctx, broker.Client(s.clientID)); err != nil {
			s.end("broker bind failed", true)
			return nil, "", status.Errorf(codes.Unavailable, "registering the client id failed: %s", withRetry(err))
		}
	}
	s.mu.Lock()
	token := s.rotateTokenLocked("")
	s.attachLocked(st, s.interval, false)
	s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED, detail: "from " + st.peer})
	s.mu.Unlock()
	if err := s.subscribe(h.GetTopics()); err != nil {
		s.close(err, "subscribing failed")
		return nil, "", err
	}
	return s, token, nil
}

// rotateTokenLocked issues a new resume token, given the one the client
// presented to resume ("" for a fresh session). The presented token stays
// valid beside the new one until the client presents the new one: if this
// stream breaks before its Welcome arrives, the client, which still holds
// the presented token, can resume with it. Any older token stops working.
func (s *Session) rotateTokenLocked(presented string) string {
	if presented != "" && !tokenMatches(s.heldHash, presented) {
		sum := sha256.Sum256([]byte(presented))
		s.heldHash = sum[:]
	}
	token := randomID(32)
	sum := sha256.Sum256([]byte(token))
	s.tokenHash = sum[:]
	return token
}

// tokenValidLocked reports whether token resumes s: the current token, or
// the one the client last presented (see rotateTokenLocked).
func (s *Session) tokenValidLocked(token string) bool {
	return tokenMatches(s.tokenHash, token) || tokenMatches(s.heldHash, token)
}

// attachLocked makes st carry s and rotates the resume token.
func (s *Session) attachLocked(st *stream, interval time.Duration, resumed bool) {
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.st = st
	st.sess = s
	s.queueBase = s.outSeq
	s.srv.streamCame()
	s.state = tetherv1.SessionState_SESSION_STATE_CONNECTED
	s.resumed = resumed
	s.interval = interval
	s.connectedAt = time.Now()
	s.peer = st.peer
	st.ackedIn.Store(s.inSeq.Load())
}

func tokenMatches(hash []byte, token string) bool {
	if len(hash) == 0 || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(hash, sum[:]) == 1
}

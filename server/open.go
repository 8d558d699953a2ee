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

// A stream's phases, for finish (see endstream.go): while Hello is
// awaited and once frames are read, finish may end the stream under its
// reader; while the session opens, it may not, so that the open runs to
// its end with the stream's context alive (a session it creates is
// either welcomed or undone, never left behind unwelcomed), as when the
// handler goroutine's return is what ends a stream.
const (
	phaseHello   int32 = iota // awaiting Hello
	phaseOpening              // opening or resuming the session
	phaseReading              // reading frames
)

// run receives Hello within the hello timeout, opens or resumes its
// session, then reads every frame until the stream ends, all on the
// handler goroutine (see endstream.go). The timeout bounds receiving Hello
// only; a frame received as it fires is dropped, the stream ending with
// DEADLINE_EXCEEDED.
func (st *stream) run() {
	d := st.srv.cfg.helloTimeout
	late := time.AfterFunc(d, func() {
		st.finish(status.Errorf(codes.DeadlineExceeded, "no hello within %v: the first frame must be hello", d))
	})
	first, err := st.recv()
	if !late.Stop() {
		return // the timeout fired: finish ended the stream
	}
	if err != nil {
		st.finish(recvStatus(err))
		return
	}
	st.phase.Store(phaseOpening)
	err = st.hello(first)
	// Either finish sees phaseReading and ends the stream under the
	// reader, or the reader sees the stream finished and returns.
	st.phase.Store(phaseReading)
	if err != nil {
		st.finish(err)
		return
	}
	if st.finished.Load() {
		return
	}
	st.start()
	st.read()
}

// awaitHello is run's twin for a stream finish cannot end under its
// reader (see endstream.go): it waits for the client's first frame, at
// most the hello timeout, then opens or resumes its session on this
// goroutine and starts the reader on a goroutine of its own. The timeout
// bounds receiving Hello only: once Hello is in, open runs to its end
// (bounded by ctx), so that a session it creates is either welcomed or
// undone, never left behind unwelcomed.
func (st *stream) awaitHello(ctx context.Context) error {
	first, err := st.firstFrame(ctx)
	if err != nil {
		return err
	}
	if err := st.hello(first); err != nil {
		return err
	}
	go st.read()
	return nil
}

// firstFrame receives the client's first frame within the hello timeout.
// On a timeout its receiving goroutine ends with the stream, which ends
// when Connect returns.
func (st *stream) firstFrame(ctx context.Context) (*tetherv1.ConnectRequest, error) {
	type received struct {
		f   *tetherv1.ConnectRequest
		err error
	}
	got := make(chan received, 1)
	go func() {
		f, err := st.recv()
		got <- received{f, err}
	}()
	d := st.srv.cfg.helloTimeout
	hello := time.NewTimer(d)
	defer hello.Stop()
	select {
	case r := <-got:
		if r.err != nil {
			return nil, recvStatus(r.err)
		}
		return r.f, nil
	case <-hello.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %v: the first frame must be hello", d)
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// hello opens or resumes the session of the first frame, which must be
// Hello. Silence counts from here: the heartbeat deadline runs from the
// last frame received, and Hello is the first.
func (st *stream) hello(first *tetherv1.ConnectRequest) (err error) {
	defer func() {
		if p := recover(); p != nil {
			st.srv.cfg.logger.Error("tether: panic in a session reader", "panic", p, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
			if st.sess != nil {
				st.sess.dropStream(st, err, "internal error")
			}
		}
	}()
	st.lastRead.Store(time.Now().UnixNano())
	st.srv.metrics.framesIn(first)
	h := first.GetHello()
	if h == nil {
		return status.Errorf(codes.InvalidArgument, "the first frame must be hello, got %s", frameName(first))
	}
	return st.srv.open(st, h)
}

// opening is a session that Hello opened, resumed or fresh, attached to the
// stream, with what its Welcome says.
type opening struct {
	s      *Session
	fresh  bool
	status tetherv1.ResumeStatus // NOT_REQUESTED, or how the resume went
	lost   *tetherv1.SeqRange    // messages lost while detached, if any
	token  string                // the new resume token
	gone   bool                  // the stream ended before it attached: nothing to do
}

// open handles Hello: it resumes or creates the session, attaches the
// stream, runs OnConnect and queues Welcome and the replay.
func (srv *Server) open(st *stream, h *tetherv1.Hello) error {
	ctx := st.ss.Context()
	if err := srv.admitHello(ctx, h); err != nil {
		return err
	}
	st.setWindow(srv.grantWindow(h)) // before the writer starts (after Welcome)
	st.setBatch(srv.grantBatch(h))
	o, err := srv.resumeOrCreate(ctx, st, h)
	if err != nil {
		return err
	}
	s := o.s
	if err := s.onConnect(ctx); err != nil {
		s.dropStream(st, err, "rejected by the handler")
		if o.fresh {
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
	if err := srv.welcome(st, s, o.status, o.lost, o.token); err != nil {
		return err
	}
	p := srv.cfg.profile.Heartbeat
	st.expiresAt = srv.cfg.authz.Expires(ctx)
	s.mu.Lock()
	interval := s.interval // a newer stream's resume may set it
	s.mu.Unlock()
	st.startLiveness(interval, p.Misses, p.Grace, srv.maxAgeAt(st.ss.Context()))
	return nil
}

// admitHello checks Hello and whether this node and the Authorizer let it
// open a session.
func (srv *Server) admitHello(ctx context.Context, h *tetherv1.Hello) error {
	if err := srv.validHello(h); err != nil {
		return err
	}
	if err := srv.startedErr(); err != nil {
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
	return nil
}

// resumeOrCreate resumes the session Hello names, or creates one when
// Hello names none or it cannot be resumed.
func (srv *Server) resumeOrCreate(ctx context.Context, st *stream, h *tetherv1.Hello) (opening, error) {
	principal := srv.cfg.principal(ctx)
	o := opening{status: tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED}
	if r := h.GetResume(); r != nil && r.GetSessionId() != "" {
		var err error
		if o, err = srv.resume(ctx, st, principal, r, h); err != nil {
			return opening{}, err
		}
		srv.metrics.resumes.WithLabelValues(resumeLabel(o.status)).Inc()
	}
	if o.s != nil {
		return o, nil
	}
	s, token, err := srv.create(ctx, st, principal, h)
	if err != nil {
		return opening{}, err
	}
	srv.metrics.opened.Inc()
	o.s, o.token, o.fresh = s, token, true
	return o, nil
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
	s := srv.newSession(principal, h)
	var bequest *broker.SessionRecord // the session on another node s inherits from
	if srv.broker.Shared() && s.clientID != "" && srv.cfg.oneSessionPerID {
		if err := srv.takeOverClient(ctx, s); err != nil {
			return nil, "", err
		}
	}
	s.tookOver = srv.inherit(ctx, s, h.GetResume())
	if s.tookOver == nil && srv.broker.Shared() && s.clientID != "" && srv.cfg.oneSessionPerID {
		var err error
		if s.tookOver, bequest, err = srv.inheritAway(ctx, s, h.GetResume()); err != nil {
			return nil, "", err
		}
	}
	old, err := srv.indexFresh(s)
	if err != nil {
		srv.disinherit(ctx, s)
		return nil, "", err
	}
	for _, o := range old {
		o.takenOver("a newer session "+s.id+" took over the client id", "client id taken over by session "+s.id)
	}
	if err := srv.bindFresh(ctx, s); err != nil {
		s.end("broker bind failed", true)
		return nil, "", err
	}
	srv.settleBequest(ctx, s, bequest)
	s.mu.Lock()
	token := s.rotateTokenLocked("")
	attached := s.attachLocked(st, s.interval, false, event{detail: "from " + st.peer})
	queued := s.outSeq // inherited, or routed before the attach: not on the stream yet
	s.unlock()
	if !attached {
		return nil, "", status.Error(codes.Unavailable, "the session ended as it opened (the server is closing): reconnect")
	}
	if err := s.queueBacklog(ctx, st, queued); err != nil {
		s.close(err, "reading the inherited messages failed")
		return nil, "", err
	}
	if err := s.subscribe(h.GetTopics()); err != nil {
		s.close(err, "subscribing failed")
		return nil, "", err
	}
	return s, token, nil
}

// queueBacklog puts on a fresh session's stream, ahead of what enqueue
// pushed since the attach, the messages queued before it: those it
// inherited (see inherit), and any routed to it between indexFresh and the
// attach.
func (s *Session) queueBacklog(ctx context.Context, st *stream, upTo uint64) error {
	backlog, err := s.readReplay(ctx, 1, upTo)
	if err != nil {
		return status.Errorf(codes.Unavailable, "reading the session's queued messages failed: %v; reconnect", err)
	}
	st.mu.Lock()
	st.data.pushFront(backlog...)
	st.mu.Unlock()
	return nil
}

// newSession returns a session for Hello, not yet on the server.
func (srv *Server) newSession(principal string, h *tetherv1.Hello) *Session {
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
		cb:        newCallbacks(),
		// A fresh session for a Hello that asked to resume: the
		// client may re-send into it what it sent the old one.
		resends: h.GetResume().GetSessionId() != "",
	}
	s.log = srv.broker.Log(s.id)
	return s
}

// indexFresh puts a fresh session on the server and returns the sessions
// of its client id it takes over (unless several are allowed).
func (srv *Server) indexFresh(s *Session) ([]*Session, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch {
	case srv.draining || srv.closed:
		return nil, status.Error(codes.Unavailable, "the server is draining: reconnect to another backend")
	case len(srv.sessions) >= srv.cfg.maxSessions:
		return nil, status.Errorf(codes.Unavailable, "the server is at its limit of %d sessions: reconnect to another backend", srv.cfg.maxSessions)
	}
	var old []*Session
	if srv.cfg.oneSessionPerID && s.clientID != "" {
		old = collect(srv.byClient[s.clientID])
		for _, o := range old {
			if o.principal != s.principal {
				return nil, status.Errorf(codes.PermissionDenied, "client id %q belongs to a session of another principal: choose another client id", truncate(s.clientID))
			}
		}
	}
	srv.indexLocked(s)
	return old, nil
}

// bindFresh binds a fresh session's addresses in the broker.
func (srv *Server) bindFresh(ctx context.Context, s *Session) error {
	if err := srv.broker.Bind(ctx, broker.Session(s.id)); err != nil {
		return status.Errorf(codes.Unavailable, "registering the session failed: %s", withRetry(err))
	}
	if s.clientID != "" {
		if err := srv.broker.Bind(ctx, broker.Client(s.clientID)); err != nil {
			return status.Errorf(codes.Unavailable, "registering the client id failed: %s", withRetry(err))
		}
	}
	return nil
}

// takenOver ends a session whose client id a newer session took: its
// stream gets GoAway{TAKEN_OVER} and ends with ABORTED.
func (s *Session) takenOver(detail, why string) {
	s.srv.metrics.takeovers.Inc()
	s.mu.Lock()
	s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_TAKEN_OVER, detail: detail})
	s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER, "a newer session took over this client id; do not reconnect", 0,
		status.Error(codes.Aborted, "client id taken over by a newer session"))
	s.unlock()
	s.close(status.Error(codes.Aborted, "client id taken over by a newer session"), why)
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

// attachLocked makes st carry s, recording e (see transitionLocked). It
// reports false, attaching nothing, when s ended meanwhile.
func (s *Session) attachLocked(st *stream, interval time.Duration, resumed bool, e event) bool {
	if !s.transitionLocked(stateConnected, e) {
		return false
	}
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.st = st
	st.sess = s
	s.releaseLocked(s.ackedOut) // a resume's last received seq acked more
	s.resumed = resumed
	s.interval = interval
	s.connectedAt = time.Now()
	s.peer = st.peer
	st.ackedIn.Store(s.inSeq.Load())
	return true
}

func tokenMatches(hash []byte, token string) bool {
	if len(hash) == 0 || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(hash, sum[:]) == 1
}

package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Connect carries one session over one stream; see the TetherService
// documentation in proto/tether/v1 for the protocol.
func (svc *service) Connect(ss tetherv1.TetherService_ConnectServer) error {
	srv := svc.srv
	ctx := ss.Context()
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	st := newStream(srv, ss, addr)
	srv.metrics.streams.Inc()
	defer srv.metrics.streams.Dec()

	if err := st.awaitHello(ctx); err != nil {
		return err
	}
	st.start()
	// This goroutine only waits, so that it can always return: returning
	// cancels the stream, which is the only way to unblock a Send stuck on
	// a client that stopped reading. The reader has a goroutine of its
	// own, and the writer one only while frames wait (stream.write).
	<-st.done
	return st.endErr
}

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
	first, err := st.ss.Recv()
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

// read runs the stream's reader after Hello: every frame until the stream
// ends.
func (st *stream) read() {
	defer func() {
		if p := recover(); p != nil {
			st.srv.cfg.logger.Error("tether: panic in a session reader", "panic", p, "stack", string(debug.Stack()))
			st.sess.dropStream(st, status.Error(codes.Internal, "internal error"), "internal error")
		}
	}()
	for {
		req, err := st.ss.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Half-close: the client sends no more, but may still
				// listen (grpcurl with -d '{"hello":…}' does). The stream
				// stays until the heartbeat deadline, a GoAway or a cancel.
				st.sess.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR,
					detail: "the client half-closed the stream: receive-only until its heartbeat deadline"})
			} else {
				st.sess.dropStream(st, recvStatus(err), "stream broken: "+err.Error())
			}
			return
		}
		now := time.Now()
		st.lastRead.Store(now.UnixNano())
		st.srv.metrics.framesIn(req)
		if !st.frames.AllowN(now, 1) { // Allow would read the clock again
			err := status.Errorf(codes.ResourceExhausted, "more than %v frames per second (bursts of %d): slow down; the stream is cut to protect the server", st.srv.cfg.frameRate, st.srv.cfg.frameBurst)
			st.sess.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: err.Error()})
			st.sess.dropStream(st, err, "frame flood")
			return
		}
		if !st.serve(req) {
			return
		}
	}
}

// serve handles one frame while the stream still carries its session, one
// frame at a time per session (a taken-over stream's reader may still be
// running). It reports false when the reader should stop.
func (st *stream) serve(req *tetherv1.ConnectRequest) bool {
	s := st.sess
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if st.leaving.Load() {
		return !st.finished.Load() // frames after a GoAway are ignored; the client re-sends after resume
	}
	err := st.handle(req)
	if err == nil && st.ctrlBacklog() > maxCtrlBacklog {
		err = status.Errorf(codes.ResourceExhausted, "more than %d control frames (pongs, acks, errors) wait to be written: the client is not reading its stream", maxCtrlBacklog)
	}
	if err != nil {
		s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: err.Error()})
		s.dropStream(st, err, "protocol error")
		return false
	}
	return !st.finished.Load()
}

// recvStatus turns a Recv error into the status the stream ends with. (A
// frame gRPC cannot decode, such as a string field with invalid UTF-8, is
// answered by grpc-go itself with INTERNAL before the handler sees it.)
func recvStatus(err error) error {
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "the stream ended before hello")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.FromContextError(err).Err()
}

func frameName(f *tetherv1.ConnectRequest) string {
	if f.GetFrame() == nil {
		return "an empty frame"
	}
	return string(f.ProtoReflect().WhichOneof(f.ProtoReflect().Descriptor().Oneofs().ByName("frame")).Name())
}

// handle processes one frame after Hello. A returned error ends the stream.
func (st *stream) handle(req *tetherv1.ConnectRequest) error {
	s := st.sess
	switch f := req.Frame.(type) {
	case *tetherv1.ConnectRequest_Ping:
		st.pushPong(f.Ping)
		s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING})
	case *tetherv1.ConnectRequest_Pong:
		st.mu.Lock()
		st.heartbeatLocked(time.Now(), false)
		st.mu.Unlock()
		if at := f.Pong.GetSentAt(); at != nil && at.IsValid() {
			rtt := time.Since(at.AsTime())
			if rtt >= 0 && rtt < time.Hour {
				st.srv.metrics.rtt.Observe(rtt.Seconds())
				s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_RTT, rtt: rtt})
			}
		}
	case *tetherv1.ConnectRequest_Message:
		return st.handleMessage(f.Message)
	case *tetherv1.ConnectRequest_Ack:
		return s.ack(f.Ack.GetSeq())
	case *tetherv1.ConnectRequest_Subscribe:
		for _, t := range f.Subscribe.GetTopics() {
			if err := st.srv.cfg.authz.Subscribe(st.ss.Context(), t); err != nil {
				st.sendError(err, 0)
				return nil
			}
		}
		if err := s.subscribe(f.Subscribe.GetTopics()); err != nil {
			if status.Code(err) == codes.InvalidArgument {
				return err
			}
			st.sendError(err, 0)
		}
	case *tetherv1.ConnectRequest_Unsubscribe:
		s.unsubscribe(f.Unsubscribe.GetTopics())
	case *tetherv1.ConnectRequest_Close:
		s.close(nil, "closed by the client: "+truncate(f.Close.GetReason()))
	case *tetherv1.ConnectRequest_Hello:
		return status.Error(codes.InvalidArgument, "hello may be sent only once, as the first frame")
	default:
		return status.Error(codes.InvalidArgument, "empty or unknown frame: set exactly one of ping, pong, message, ack, subscribe, unsubscribe or close")
	}
	return nil
}

// sendError queues a non-fatal Error frame.
func (st *stream) sendError(err error, seq uint64) {
	stt := status.Convert(err)
	st.pushCtrl(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Error{Error: &tetherv1.Error{
		Code: uint32(stt.Code()), Message: stt.Message(), Seq: seq,
	}}})
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
	if len(h.GetTopics()) > srv.cfg.maxTopics {
		return status.Errorf(codes.InvalidArgument, "hello.topics has %d topics; the limit is %d", len(h.GetTopics()), srv.cfg.maxTopics)
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

// resume tries to resume the session Hello names. It returns nil and the
// reason when the session cannot be resumed; the caller then creates one.
// It fails only when the session exists but cannot be taken over now (a
// shared broker is unreachable): the client should retry.
func (srv *Server) resume(ctx context.Context, st *stream, principal string, r *tetherv1.Resume, h *tetherv1.Hello) (*Session, tetherv1.ResumeStatus, *tetherv1.SeqRange, string, error) {
	rec, ok, err := srv.broker.GetSession(ctx, r.GetSessionId())
	if err != nil {
		srv.cfg.logger.Error("tether: reading a session record failed", "session", r.GetSessionId(), "err", err)
		if srv.broker.Shared() {
			return nil, 0, nil, "", status.Errorf(codes.Unavailable, "reading the session failed: %v; retry the resume, here or on another backend", err)
		}
	}
	switch {
	case !ok || !tokenMatches(rec.TokenHash, r.GetResumeToken()) && !tokenMatches(rec.HeldTokenHash, r.GetResumeToken()):
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION, nil, "", nil
	case rec.Principal != principal:
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_PRINCIPAL_MISMATCH, nil, "", nil
	case rec.Closed:
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_CLOSED, nil, "", nil
	case !rec.Expires.IsZero() && !time.Now().Before(rec.Expires):
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_EXPIRED, nil, "", nil
	}
	srv.mu.RLock()
	s := srv.sessions[rec.ID]
	srv.mu.RUnlock()
	last := r.GetLastReceivedSeq()
	if s == nil {
		if !srv.broker.Shared() {
			// Held by another node, which alone can resume it.
			return nil, tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION, nil, "", nil
		}
		if s, err = srv.adopt(ctx, rec, last); err != nil {
			srv.cfg.logger.Warn("tether: taking over a session from another node failed", "session", rec.ID, "node", rec.Node, "err", err)
			if _, ok := status.FromError(err); !ok {
				err = status.Errorf(codes.Unavailable, "taking over the session from node %s failed: %v; retry the resume", rec.Node, err)
			}
			return nil, 0, nil, "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.tokenValidLocked(r.GetResumeToken()):
		// Checked again under the lock: the token may have changed.
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION, nil, "", nil
	case s.state == tetherv1.SessionState_SESSION_STATE_CLOSED:
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_CLOSED, nil, "", nil
	case last > s.sentSeq.Load():
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_SEQ_MISMATCH, nil, "", nil
	}
	// What the client has not received, read before anything changes: a
	// resume whose replay could not be read must fail (the client retries)
	// rather than go on past the messages it would silently miss.
	replay, err := s.replayLocked(ctx, max(last, s.ackedOut)+1)
	if err != nil {
		srv.cfg.logger.Warn("tether: reading a session's log for its replay failed", "session", s.id, "err", err)
		return nil, 0, nil, "", status.Errorf(codes.Unavailable, "reading the session's unreceived messages failed: %v; retry the resume", err)
	}
	token := s.rotateTokenLocked(r.GetResumeToken())
	if old := s.st; old != nil {
		s.srv.metrics.takeovers.Inc()
		s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_TAKEN_OVER, detail: "a newer stream from " + st.peer + " resumed the session"})
		s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER, "a newer stream resumed this session; do not reconnect", 0,
			status.Error(codes.Aborted, "session taken over by a newer stream"))
		s.detachLocked("taken over by a newer stream")
	}
	rs := tetherv1.ResumeStatus_RESUME_STATUS_RESUMED
	var lost *tetherv1.SeqRange
	if s.lost.First != 0 && s.lost.Last > last {
		rs = tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP
		lost = &tetherv1.SeqRange{First: max(s.lost.First, last+1), Last: s.lost.Last}
		// The client skips the lost range (it acks past it), so count it
		// as sent: a later resume from beyond it is in step, not ahead.
		storeMax(&s.sentSeq, lost.Last)
		s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_LOG_OVERFLOW,
			detail: fmt.Sprintf("messages %d..%d were dropped from the outbound log while detached", lost.First, lost.Last)})
	}
	s.lost = tetherv1.SeqRange{}
	if last > s.ackedOut {
		s.ackedOut = last
		_ = s.log.Trim(ctx, last)
	}
	s.resumes++
	interval := s.interval
	if h.GetHeartbeatInterval().AsDuration() > 0 {
		interval = srv.grantInterval(h) // a client on a new network may ask for another
	}
	s.attachLocked(st, interval, true)
	s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_RESUMED, detail: "from " + st.peer, resume: rs})
	// Replay what the client has not received, in order, behind Welcome.
	st.mu.Lock()
	st.data.pushFront(replay...)
	st.mu.Unlock()
	srv.metrics.replayed.Add(float64(len(replay)))
	return s, rs, lost, token, nil
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

// welcome queues Welcome, with the token issued when the stream attached,
// ahead of the replay. It fails when another stream took the session over
// in the meantime.
func (srv *Server) welcome(st *stream, s *Session, rs tetherv1.ResumeStatus, lost *tetherv1.SeqRange, token string) error {
	s.mu.Lock()
	if s.st != st {
		s.mu.Unlock()
		return status.Error(codes.Aborted, "session taken over by a newer stream before this one was welcomed")
	}
	s.putRecordLocked()
	hb := srv.cfg.profile.Heartbeat
	w := &tetherv1.Welcome{
		SessionId:         s.id,
		ResumeToken:       token,
		Resumed:           rs == tetherv1.ResumeStatus_RESUME_STATUS_RESUMED || rs == tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP,
		ResumeStatus:      rs,
		Lost:              lost,
		ServerId:          srv.cfg.serverID,
		HeartbeatInterval: durationpb.New(s.interval),
		HeartbeatMisses:   uint32(hb.Misses),
		DeadAfter:         durationpb.New(s.interval*time.Duration(hb.Misses) + hb.Grace),
		ResumeAnywhere:    srv.broker.Shared(),
		KeepaliveMinTime:  durationpb.New(srv.cfg.profile.Enforcement.MinTime),
		ResumeWindow:      durationpb.New(srv.cfg.resumeWindow),
		LastReceivedSeq:   s.inSeq.Load(),
		LastSentSeq:       s.outSeq,
		Limits: &tetherv1.Limits{
			MaxMessageBytes:  uint32(srv.cfg.maxMessageBytes),
			MaxOutboundQueue: uint32(srv.cfg.maxOutboundQueue),
			MaxTopics:        uint32(srv.cfg.maxTopics),
		},
	}
	w.Topics = slices.Sorted(maps.Keys(s.topics))
	s.mu.Unlock()
	st.mu.Lock()
	st.ctrl.pushFront(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Welcome{Welcome: w}})
	st.mu.Unlock() // written once Connect starts the writer
	return nil
}

func tokenMatches(hash []byte, token string) bool {
	if len(hash) == 0 || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(hash, sum[:]) == 1
}

// panicGuard logs a panic in a timer or background goroutine instead of
// crashing the process.
func (srv *Server) panicGuard(where string) {
	if p := recover(); p != nil {
		srv.cfg.logger.Error("tether: panic in "+where, "panic", p, "stack", string(debug.Stack()))
	}
}

// replayLocked reads the session's log from seq from: what a resuming
// client has not received.
func (s *Session) replayLocked(ctx context.Context, from uint64) ([]broker.Entry, error) {
	var replay []broker.Entry
	err := s.log.Read(ctx, from, func(e broker.Entry) bool {
		replay = append(replay, e)
		return true
	})
	return replay, err
}

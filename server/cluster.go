package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file holds what the server does only with a shared broker (see
// broker.Broker.Shared): sessions move between nodes.

// adopt makes a session that another node holds, or held before it died,
// local to this node and detached, from its record and its log: the first
// step of resuming it here. last is the client's last received seq.
func (srv *Server) adopt(ctx context.Context, rec broker.SessionRecord, last uint64) (_ *Session, err error) {
	// Fenced: another node adopting the session at the same time refuses
	// (before it writes anything of it) until this one is done.
	if f, ok := srv.broker.(broker.Fencer); ok {
		claim, err := f.Claim(ctx, rec.ID, srv.cfg.serverID)
		if err != nil {
			return nil, err
		}
		defer srv.releaseClaim(ctx, f, rec.ID, claim, &err)
	}
	// The holder, if alive, ends its stream and stops writing the log
	// before the log is read here.
	if err := srv.broker.Evict(ctx, broker.Eviction{Session: rec.ID, Node: srv.cfg.serverID}); err != nil {
		return nil, err
	}
	s := srv.adoptedSession(rec)
	if err := s.restoreSeqs(ctx, rec, last); err != nil {
		return nil, err
	}
	// Read what the log's first append here needs now, not under mu.
	if p, ok := s.log.(broker.Preparer); ok {
		if err := p.Prepare(ctx, s.outSeq+1); err != nil {
			return nil, err
		}
	}
	if o, err := srv.indexAdopted(s); o != nil || err != nil {
		return o, err
	}
	// Resumes find s from here on: they wait until it is bound (or left).
	defer func() {
		s.adoption.err = err
		close(s.adoption.done)
	}()
	srv.metrics.adopted.Inc()
	// Not cut short by the stream that asked: a client that gave up
	// retries, and finds the session here, bound (or gone, and says so).
	if err := srv.bindAdopted(context.WithoutCancel(ctx), s); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.expiry = time.AfterFunc(time.Until(s.resumeDeadline), s.expire)
	s.mu.Unlock()
	return s, nil
}

// releaseClaim releases an adoption's claim on session id. When the claim
// lapsed and another node claimed the session meanwhile (the adoption took
// too long), that node adopts it: an adoption that succeeded here leaves
// again, and *err says so. Any other failure leaves the claim to lapse.
func (srv *Server) releaseClaim(ctx context.Context, f broker.Fencer, id string, claim uint64, err *error) {
	rerr := f.Release(context.WithoutCancel(ctx), id, claim)
	switch {
	case rerr == nil || *err != nil:
		return
	case !errors.Is(rerr, broker.ErrFenced):
		srv.cfg.logger.Warn("tether: releasing the claim on an adopted session failed; it lapses by itself", "session", id, "err", rerr)
		return
	}
	srv.mu.RLock()
	s := srv.sessions[id]
	srv.mu.RUnlock()
	if s != nil {
		s.release("(a later adoption)")
	}
	*err = status.Errorf(codes.Unavailable, "taking over the session failed: %s", withRetry(rerr))
}

// adoption is the takeover of a session from another node in progress:
// done closes once it is over, err set first when it failed.
type adoption struct {
	done chan struct{}
	err  error
}

// adoptedSession returns the session of rec, detached, not yet on the
// server.
func (srv *Server) adoptedSession(rec broker.SessionRecord) *Session {
	s := &Session{
		srv:       srv,
		id:        rec.ID,
		clientID:  rec.ClientID,
		principal: rec.Principal,
		metadata:  rec.Metadata,
		created:   rec.Created,
		topics:    make(map[string]struct{}, len(rec.Topics)),
		rec:       newRecorder(srv.cfg.recorderSize),
		interval:  rec.Interval,
		tokenHash: rec.TokenHash,
		heldHash:  rec.HeldTokenHash,
		cb:        newCallbacks(),
		adoption:  &adoption{done: make(chan struct{})},
	}
	if s.interval <= 0 {
		s.interval = srv.cfg.profile.Heartbeat.Interval
	}
	for _, t := range rec.Topics {
		s.topics[t] = struct{}{}
	}
	s.log = srv.broker.Log(s.id)
	s.resumeDeadline = rec.Expires
	if s.resumeDeadline.IsZero() {
		s.resumeDeadline = time.Now().Add(srv.cfg.resumeWindow)
	}
	// Not shared yet: no lock needed.
	s.transitionLocked(stateDetached, event{detail: "adopted from node " + rec.Node})
	return s
}

// restoreSeqs sets an adopted session's seqs from its record and its log,
// and the lost range: what the client has not received and the log no
// longer holds (it overflowed, or the previous node died before storing
// it). It reads the log before the session is shared: no lock needed.
func (s *Session) restoreSeqs(ctx context.Context, rec broker.SessionRecord, last uint64) error {
	var first, tail uint64
	if err := s.log.Read(ctx, 0, func(e broker.Entry) bool {
		if first == 0 {
			first = e.Seq
		}
		tail = e.Seq
		s.holdLocked(e.Seq, len(e.Message.Payload)) // attachLocked releases what was acked
		if k := e.Message.DedupeKey; k != "" && e.Message.Target.Kind != broker.KindTopic {
			now := time.Now()
			s.received.add(k, now, s.srv.cfg.dedupeWindow, s.srv.keep(now)) // adopted: a shared broker
		}
		return true
	}); err != nil {
		return err
	}
	var bound uint64 // a log kept on its writer's node only: what it may have held
	if b, ok := s.log.(broker.Bounded); ok {
		var err error
		if bound, err = b.LastSeq(ctx); err != nil {
			return err
		}
	}
	s.outSeq = max(tail, rec.SentSeq, last, bound)
	s.ackedOut = min(rec.AckedSeq, s.outSeq)
	s.sentSeq.Store(s.outSeq)
	s.inSeq.Store(rec.ReceivedSeq)
	s.inStale.Store(true)
	s.inCheck.Store(true)
	s.checkUntil.Store(0)
	lo := max(last, s.ackedOut) + 1
	hi := s.outSeq
	if first != 0 {
		hi = min(hi, first-1)
	}
	if lo <= hi {
		s.lost = seqRange{First: lo, Last: hi}
	}
	return nil
}

// indexAdopted puts an adopted session on the server. It returns instead
// the session a concurrent resume adopted meanwhile, if any.
func (srv *Server) indexAdopted(s *Session) (*Session, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch {
	case srv.draining || srv.closed:
		return nil, status.Error(codes.Unavailable, "the server is draining: reconnect to another backend")
	case srv.sessions[s.id] != nil:
		return srv.sessions[s.id], nil
	case len(srv.sessions) >= srv.cfg.maxSessions:
		return nil, status.Errorf(codes.Unavailable, "the server is at its limit of %d sessions: reconnect to another backend", srv.cfg.maxSessions)
	}
	srv.indexLocked(s)
	for t := range s.topics {
		addTo(srv.topics, t, s)
	}
	return nil, nil
}

// awaitAdoption waits until the takeover of s from another node, if any,
// is done, and returns its failure as a resume's status.
func (s *Session) awaitAdoption(ctx context.Context) error {
	if s.adoption == nil {
		return nil
	}
	select {
	case <-s.adoption.done:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	if err := s.adoption.err; err != nil {
		if _, ok := status.FromError(err); !ok {
			err = status.Errorf(codes.Unavailable, "taking over the session failed: %s", withRetry(err))
		}
		return err
	}
	return nil
}

// bindAdopted binds an adopted session's addresses, only now that its seqs
// are known: binding delivers the messages kept for the session while no
// node held it. On failure the session leaves the node again.
func (srv *Server) bindAdopted(ctx context.Context, s *Session) error {
	addrs := []broker.Address{broker.Session(s.id)}
	if s.clientID != "" {
		addrs = append(addrs, broker.Client(s.clientID))
	}
	for t := range s.topics {
		addrs = append(addrs, broker.Topic(t))
	}
	for i, a := range addrs {
		if err := srv.broker.Bind(ctx, a); err != nil {
			for _, b := range addrs[:i] {
				_ = srv.broker.Unbind(context.Background(), b)
			}
			s.mu.Lock()
			s.departLocked(event{kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: "taking it over failed: " + err.Error()})
			s.unindexAllLocked()
			s.unlock()
			return status.Errorf(codes.Unavailable, "taking over the session failed: %s", withRetry(err))
		}
	}
	return nil
}

// Evict acts on an eviction from another node (see broker.Receiver).
func (r receiver) Evict(e broker.Eviction) error {
	srv := r.srv
	if e.Session != "" {
		srv.mu.RLock()
		s := srv.sessions[e.Session]
		srv.mu.RUnlock()
		if s != nil {
			if srv.cfg.pipelining {
				srv.released.Store(e.Session, s) // for Quiesce
			}
			s.release(e.Node)
		}
	}
	if e.Client == "" {
		return nil
	}
	srv.mu.RLock()
	held := collect(srv.byClient[e.Client])
	srv.mu.RUnlock()
	for _, o := range held {
		if o.id != e.By && o.principal != e.Principal {
			return broker.ErrForeignClient
		}
	}
	for _, o := range held {
		if o.id == e.By {
			continue
		}
		o.bequeath(e.By)
		o.takenOver("a newer session "+e.By+" on node "+e.Node+" took over the client id", "client id taken over by session "+e.By+" on node "+e.Node)
	}
	return nil
}

// release lets another node have the session: the stream (if any) is told
// to go away, and the session leaves this node without ending: no OnClose,
// and its log and record stay. It returns once the session can no longer
// write to its log here.
func (s *Session) release(node string) {
	s.mu.Lock()
	if s.state.ended() {
		s.mu.Unlock()
		return
	}
	if s.st != nil {
		s.srv.metrics.takeovers.Inc()
		s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER, "a newer stream resumed this session on another node; do not reconnect", 0,
			status.Error(codes.Aborted, "session resumed on another node"))
		s.detachLocked("resumed on node " + node)
	}
	s.departLocked(event{detail: "resumed on node " + node})
	topics := s.unindexAllLocked()
	s.unlock()
	s.sealRecord()
	s.unbind(context.Background(), topics)
}

// quiescingReceiver is the receiver of a server with pipelining: a
// broker.Quiescer.
type quiescingReceiver struct{ receiver }

// Quiesce waits for what session id routed through its pipeline before it
// was released (see broker.Quiescer): the node taking it over checks the
// keys of what the client re-sends, and those keys are recorded as each
// message's route ends.
func (r quiescingReceiver) Quiesce(ctx context.Context, id string) {
	if s, ok := r.srv.released.LoadAndDelete(id); ok {
		s.(*Session).awaitPipelineUntil(ctx.Done())
	}
}

// departLocked marks s gone from this node, moved: enqueue refuses, timers
// stop. It keeps s visible to AdminService for a while (keepEndedLocked).
// Its flight recorder says why (e), as a TAKEN_OVER event unless e names
// another kind.
func (s *Session) departLocked(e event) {
	if !s.transitionLocked(stateMoved, e) {
		return
	}
	go s.stopPipeline() // its lock may be held by a reader waiting for s.mu
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
}

// unindexAllLocked removes s from the server's indexes and returns its
// topics.
func (s *Session) unindexAllLocked() []string {
	topics := make([]string, 0, len(s.topics))
	for t := range s.topics {
		topics = append(topics, t)
	}
	s.srv.mu.Lock()
	s.srv.unindexLocked(s, topics)
	if s.state.ended() {
		s.srv.keepEndedLocked(s)
	}
	s.srv.mu.Unlock()
	return topics
}

// leave detaches s (ending its stream with err) and removes it from this
// node, keeping its record and log for a resume on another node: what a
// node with a shared broker does to its sessions when it stops.
func (s *Session) leave(err error, why string) {
	s.mu.Lock()
	if s.state.ended() {
		s.mu.Unlock()
		return
	}
	if st := s.st; st != nil {
		s.detachLocked(why)
		st.closeAfterFlush(err)
	} else {
		s.putRecordLocked()
	}
	s.departLocked(event{kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED, detail: why + ": resumable on another node"})
	topics := s.unindexAllLocked()
	s.unlock() // stores the record, for the node that resumes it
	s.sealRecord()
	s.unbind(context.Background(), topics)
}

// takeOverClient ends the sessions of s's client id on other nodes, unless
// they belong to another principal.
func (srv *Server) takeOverClient(ctx context.Context, s *Session) error {
	err := srv.broker.Evict(ctx, broker.Eviction{Client: s.clientID, Principal: s.principal, By: s.id, Node: srv.cfg.serverID})
	switch {
	case errors.Is(err, broker.ErrForeignClient):
		return status.Errorf(codes.PermissionDenied, "client id %q belongs to a session of another principal: choose another client id", truncate(s.clientID))
	case err != nil:
		return status.Errorf(codes.Unavailable, "taking over the client id failed: %s", withRetry(err))
	}
	return nil
}

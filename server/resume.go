package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

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

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

// resume tries to resume the session Hello names. It returns no session
// (opening.s nil) and the reason when the session cannot be resumed; the
// caller then creates one. It fails only when the session exists but
// cannot be taken over now (a shared broker is unreachable, its log could
// not be read): the client should retry.
func (srv *Server) resume(ctx context.Context, st *stream, principal string, r *tetherv1.Resume, h *tetherv1.Hello) (opening, error) {
	s, rs, err := srv.resumable(ctx, principal, r)
	if s == nil || err != nil {
		return opening{status: rs}, err
	}
	o, rp := s.attachResumed(st, r, h)
	if o.gone {
		// The client gave up on this stream (its takeover of the session
		// went on, see adopt): its next resume finds the session.
		return o, status.Error(codes.Canceled, "the stream ended before the session was resumed on it")
	}
	if o.s == nil {
		return o, nil
	}
	// Outside the session's lock: broker I/O.
	if rp.trim {
		_ = s.log.Trim(ctx, r.GetLastReceivedSeq())
	}
	replay, err := s.readReplay(ctx, rp.from, rp.to)
	if err != nil {
		srv.cfg.logger.Warn("tether: reading a session's log for its replay failed", "session", s.id, "err", err)
		err = status.Errorf(codes.Unavailable, "reading the session's unreceived messages failed: %v; retry the resume", err)
		s.undoResume(st, rp, err)
		return opening{}, err
	}
	// Ahead of what enqueue pushed since the attach (seqs after rp.to);
	// the writer starts after Welcome is queued.
	st.mu.Lock()
	st.data.pushFront(replay...)
	st.mu.Unlock()
	srv.metrics.replayed.Add(float64(len(replay)))
	return o, nil
}

// resumable finds the session r names, if this principal may resume it
// with r's token, adopting it from another node when it lives there.
func (srv *Server) resumable(ctx context.Context, principal string, r *tetherv1.Resume) (*Session, tetherv1.ResumeStatus, error) {
	rec, ok, err := srv.broker.GetSession(ctx, r.GetSessionId())
	if err != nil {
		srv.cfg.logger.Error("tether: reading a session record failed", "session", r.GetSessionId(), "err", err)
		if srv.broker.Shared() {
			return nil, 0, status.Errorf(codes.Unavailable, "reading the session failed: %v; retry the resume, here or on another backend", err)
		}
	}
	switch {
	case !ok || !tokenMatches(rec.TokenHash, r.GetResumeToken()) && !tokenMatches(rec.HeldTokenHash, r.GetResumeToken()):
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION, nil
	case rec.Principal != principal:
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_PRINCIPAL_MISMATCH, nil
	case rec.Closed:
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_CLOSED, nil
	case !rec.Expires.IsZero() && !time.Now().Before(rec.Expires):
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_EXPIRED, nil
	}
	srv.mu.RLock()
	s := srv.sessions[rec.ID]
	srv.mu.RUnlock()
	if s != nil {
		return s, 0, s.awaitAdoption(ctx) // taken over a moment ago, or still being
	}
	if !srv.broker.Shared() {
		// Held by another node, which alone can resume it.
		return nil, tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION, nil
	}
	if s, err = srv.adopt(ctx, rec, r.GetLastReceivedSeq()); err != nil {
		srv.cfg.logger.Warn("tether: taking over a session from another node failed", "session", rec.ID, "node", rec.Node, "err", err)
		if _, ok := status.FromError(err); !ok {
			err = status.Errorf(codes.Unavailable, "taking over the session from node %s failed: %v; retry the resume", rec.Node, err)
		}
		return nil, 0, err
	}
	return s, 0, s.awaitAdoption(ctx) // a concurrent resume's takeover, maybe not done
}

// replayRange is the part of a session's log that a resumed stream replays
// (from..to), and what attachResumed changed that undoResume restores.
type replayRange struct {
	from, to uint64
	trim     bool // the client's last received seq acked more: trim the log to it
	// the session's lost range before the resume
	lostFirst, lostLast uint64
}

// attachResumed attaches st to s for the resume r, taking s over from the
// stream that carries it, if any. It returns no session, and the reason,
// when s cannot be resumed after all; otherwise the log range to replay,
// which it does not read: that is broker I/O, outside s.mu.
func (s *Session) attachResumed(st *stream, r *tetherv1.Resume, h *tetherv1.Hello) (opening, replayRange) {
	s.mu.Lock()
	defer s.unlock()
	last := r.GetLastReceivedSeq()
	switch {
	case st.ss.Context().Err() != nil:
		// Ended while the session was taken over: it must not take the
		// session from a newer stream of the client's.
		return opening{gone: true}, replayRange{}
	case !s.tokenValidLocked(r.GetResumeToken()):
		// Checked again under the lock: the token may have changed.
		return opening{status: tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION}, replayRange{}
	case s.state.ended():
		return opening{status: tetherv1.ResumeStatus_RESUME_STATUS_CLOSED}, replayRange{}
	case last > s.sentSeq.Load():
		return opening{status: tetherv1.ResumeStatus_RESUME_STATUS_SEQ_MISMATCH}, replayRange{}
	}
	o := opening{s: s, token: s.rotateTokenLocked(r.GetResumeToken()), status: tetherv1.ResumeStatus_RESUME_STATUS_RESUMED}
	if old := s.st; old != nil {
		s.srv.metrics.takeovers.Inc()
		s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_TAKEN_OVER, detail: "a newer stream from " + st.peer + " resumed the session"})
		s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_TAKEN_OVER, "a newer stream resumed this session; do not reconnect", 0,
			status.Error(codes.Aborted, "session taken over by a newer stream"))
		s.detachLocked("taken over by a newer stream")
	}
	rp := replayRange{from: max(last, s.ackedOut) + 1, to: s.outSeq, lostFirst: s.lost.First, lostLast: s.lost.Last}
	if s.lost.First != 0 && s.lost.Last > last {
		o.status = tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP
		o.lost = &tetherv1.SeqRange{First: max(s.lost.First, last+1), Last: s.lost.Last}
		// The client skips the lost range (it acks past it), so count it
		// as sent: a later resume from beyond it is in step, not ahead.
		storeMax(&s.sentSeq, o.lost.Last)
		s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_LOG_OVERFLOW,
			detail: fmt.Sprintf("messages %d..%d were dropped from the outbound log while detached", o.lost.First, o.lost.Last)})
	}
	s.lost = seqRange{}
	if last > s.ackedOut {
		s.ackedOut = last
		rp.trim = true
	}
	interval := s.interval
	if h.GetHeartbeatInterval().AsDuration() > 0 {
		interval = s.srv.grantInterval(h) // a client on a new network may ask for another
	}
	if !s.attachLocked(st, interval, true, event{kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_RESUMED, detail: "from " + st.peer, resume: o.status}) {
		return opening{status: tetherv1.ResumeStatus_RESUME_STATUS_CLOSED}, replayRange{}
	}
	s.resumes++
	return o, rp
}

// undoResume detaches st, whose resume failed after it attached, and ends
// it with err; the session waits for the client's retry as it was, its
// lost range restored (the presented token stays valid: see
// rotateTokenLocked). A stream the resume took over stays ended.
func (s *Session) undoResume(st *stream, rp replayRange, err error) {
	s.mu.Lock()
	if s.st == st {
		if s.lost.First == 0 {
			s.lost.First, s.lost.Last = rp.lostFirst, rp.lostLast
		}
		s.detachLocked("the resume failed: " + err.Error())
	}
	s.unlock()
	st.finish(err)
}

// readReplay reads the session's log from seq from to seq to: what a
// resuming client has not received.
func (s *Session) readReplay(ctx context.Context, from, to uint64) ([]broker.Entry, error) {
	var replay []broker.Entry
	if from > to {
		return nil, nil
	}
	err := s.log.Read(ctx, from, func(e broker.Entry) bool {
		if e.Seq > to {
			return false
		}
		replay = append(replay, e)
		return true
	})
	return replay, err
}

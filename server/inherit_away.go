package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file is the inheritance of a client id's messages with a shared
// broker, whatever node held the session taken over. The holder, if alive,
// ends the session on the eviction (receiver.Evict) but keeps its log, and
// its closed record names the heir (broker.SessionRecord.Heir); its broker
// stores the log before it answers. A holder that died left its record and
// log as they were. Either way the heir's node reads the record and the
// log, and queues the unacked messages to the heir before the heir binds
// its addresses: what is routed to the client id from then on comes after
// them. Once the heir is open, the log is deleted and the record closed
// for good (settleBequest), so nothing is delivered twice.

// bequeath marks s, which a session on another node takes over, as ending
// for that heir: end keeps its log and names the heir in its record.
func (s *Session) bequeath(heir string) {
	s.mu.Lock()
	s.heirAway = heir
	s.mu.Unlock()
}

// inheritAway makes s, a fresh session not yet on the server, the heir of
// its client id's latest session, once takeOverClient ended that session
// at its holder on another node (or found no live holder), when no session
// on this node was inherited from (see inherit). It returns what Welcome
// reports and the record of the session inherited from, for
// settleBequest; nil and nil when there was nothing to inherit (no
// session, one ended otherwise or expired, or one of another principal
// whose holder is gone). It fails, retryably, when the record or the log
// cannot be read: the messages stay for the next attempt rather than be
// lost unreported.
//
// resume is the Hello's failed resume, if any (see inherit).
func (srv *Server) inheritAway(ctx context.Context, s *Session, resume *tetherv1.Resume) (*tetherv1.TakeOver, *broker.SessionRecord, error) {
	cs, ok := srv.broker.(broker.ClientSessions)
	if !ok {
		return nil, nil, nil
	}
	id, ok, err := cs.ClientSession(ctx, s.clientID)
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "reading the client id's previous session failed: %s", withRetry(err))
	}
	if !ok || id == s.id {
		return nil, nil, nil
	}
	rec, ok, err := srv.broker.GetSession(ctx, id)
	switch {
	case err != nil:
		return nil, nil, status.Errorf(codes.Unavailable, "reading the record of the client id's previous session failed: %s", withRetry(err))
	case !ok, rec.ClientID != s.clientID, rec.Principal != s.principal, rec.Closed && rec.Heir == "":
		return nil, nil, nil
	case !rec.Closed && !rec.Expires.IsZero() && rec.Expires.Before(time.Now()):
		return nil, nil, nil // expired, as it would have on a live node: nothing to take over
	}
	var entries []broker.Entry
	if err := srv.broker.Log(id).Read(ctx, 0, func(e broker.Entry) bool {
		entries = append(entries, e)
		return true
	}); err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "reading the log of the client id's previous session failed: %s", withRetry(err))
	}
	to := rec.SentSeq
	if n := len(entries); n > 0 {
		to = max(to, entries[n-1].Seq)
	}
	if b, ok := srv.broker.Log(id).(broker.Bounded); ok { // kept on its node: what it may have held
		bound, err := b.LastSeq(ctx)
		if err != nil {
			return nil, nil, status.Errorf(codes.Unavailable, "reading how far the log of the client id's previous session went failed: %s", withRetry(err))
		}
		to = max(to, bound)
	}
	var held uint64
	if resume.GetSessionId() == id {
		held = min(resume.GetLastReceivedSeq(), to)
	}
	acked := max(rec.AckedSeq, held)
	if s.handedOver == nil { // nothing forwards to s: closed at once (disinherit cleans up after it)
		s.handedOver = handedOverAtOnce
	}
	return s.bequest(id, entries, acked+1, to, acked), &rec, nil
}

// settleBequest closes for good the session s inherited from (see
// inheritAway), now that s is open: its log is deleted and its record
// becomes a tombstone without heir, so that no later session inherits the
// same messages and no resume revives it.
func (srv *Server) settleBequest(ctx context.Context, s *Session, rec *broker.SessionRecord) {
	if rec == nil {
		return
	}
	rec.Closed, rec.Heir = true, ""
	if rec.Expires.IsZero() || rec.Expires.After(time.Now()) {
		rec.Expires = time.Now()
	}
	if err := srv.broker.PutSession(ctx, *rec); err != nil {
		srv.cfg.logger.Warn("tether: closing the record of a session whose messages were inherited failed; a later takeover may deliver them again",
			"session", rec.ID, "heir", s.id, "err", err)
	}
	if err := srv.broker.Log(rec.ID).Delete(ctx); err != nil {
		srv.cfg.logger.Warn("tether: deleting the log of a session whose messages were inherited failed", "session", rec.ID, "heir", s.id, "err", err)
	}
}

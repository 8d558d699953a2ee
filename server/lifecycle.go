package server

import (
	"fmt"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// This file is a session's life cycle: its states, the transitions allowed
// between them (the table below), and the one function, transitionLocked,
// through which every change of state goes.
//
//	new ──attach──► connected ◄──attach (resume)── detached ──expire, close──► closed
//	 │                  └──────detach (stream ends)──────►│
//	 ├──adopt (from another node)────────────────────────►│
//	 ├──fail (bind, Close)──► closed                      └──move (another node)──► moved
//	 └──move (Close, shared broker)──► moved
//
// A session is new from its creation until its first stream attaches, or,
// adopted from another node, until it is detached here. A connected session
// detaches before it closes or moves. closed and moved are final: a closed
// session ended for good (its OnClose ran or will run); a moved one left
// this node and lives on elsewhere (no OnClose; its record and log stay in
// the shared broker). Both stay visible to AdminService for a while (see
// keepEndedLocked).

// state is where a session is in its life cycle.
type state uint8

const (
	stateNew       state = iota // created; no stream attached yet
	stateConnected              // a stream carries it
	stateDetached               // no stream; waiting for a resume until resumeDeadline
	stateClosed                 // ended for good
	stateMoved                  // left this node for another one (shared broker)
)

var stateNames = [...]string{"new", "connected", "detached", "closed", "moved"}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ended reports whether the session is gone from this node: closed or
// moved. Nothing may be queued to it, and it cannot change state again.
func (s state) ended() bool { return s == stateClosed || s == stateMoved }

// proto is the state as AdminService shows it.
func (s state) proto() tetherv1.SessionState {
	switch s {
	case stateConnected:
		return tetherv1.SessionState_SESSION_STATE_CONNECTED
	case stateDetached:
		return tetherv1.SessionState_SESSION_STATE_DETACHED
	case stateClosed:
		return tetherv1.SessionState_SESSION_STATE_CLOSED
	case stateMoved:
		return tetherv1.SessionState_SESSION_STATE_MOVED
	}
	return tetherv1.SessionState_SESSION_STATE_UNSPECIFIED
}

// transitions is the table of allowed changes: transitions[from][to].
var transitions = [...][5]bool{
	stateNew:       {stateConnected: true, stateDetached: true, stateClosed: true, stateMoved: true},
	stateConnected: {stateDetached: true},
	stateDetached:  {stateConnected: true, stateClosed: true, stateMoved: true},
	stateClosed:    {},
	stateMoved:     {},
}

// eventKinds is the flight-recorder event that entering each state records
// unless the caller names another (a resume records RESUMED).
var eventKinds = [...]tetherv1.SessionEventKind{
	stateConnected: tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED,
	stateDetached:  tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED,
	stateClosed:    tetherv1.SessionEventKind_SESSION_EVENT_KIND_CLOSED,
	stateMoved:     tetherv1.SessionEventKind_SESSION_EVENT_KIND_TAKEN_OVER,
}

// transitionLocked moves s to state to, for the cause e.detail: it checks
// the table, records e in the flight recorder (e.kind and e.at default to
// the state's event and now), counts it in the metrics (the live streams
// behind tether_sessions{state} and Drain) and logs it. It
// reports false, and changes nothing, when the table does not allow the
// move: the caller lost a race with another transition (a session closed
// while a stream was attaching) and must not act as if it had moved.
func (s *Session) transitionLocked(to state, e event) bool {
	from := s.state
	if !transitions[from][to] {
		if !from.ended() {
			// Only a final state may refuse a move in a race; anything
			// else is a bug in the caller.
			s.srv.cfg.logger.Error("tether: session state change not allowed", "session", s.id, "from", from, "to", to, "why", e.detail)
		}
		return false
	}
	s.state = to
	s.noteSuspendLocked(from, to)
	if e.kind == tetherv1.SessionEventKind_SESSION_EVENT_KIND_UNSPECIFIED {
		e.kind = eventKinds[to]
	}
	if e.at.IsZero() {
		e.at = time.Now()
	}
	s.rec.add(e)
	// The live count feeds tether_sessions{state} and Drain.
	if to == stateConnected {
		s.srv.streamCame()
	}
	if from == stateConnected {
		s.srv.streamGone()
	}
	s.logTransition(from, to, e.detail)
	return true
}

// logTransition logs a change of state: the ones an operator follows at
// INFO, the routine attach of a stream at DEBUG.
func (s *Session) logTransition(from, to state, why string) {
	log := s.srv.cfg.logger
	switch to {
	case stateConnected:
		log.Debug("tether: session connected", "session", s.id, "client", s.clientID, "from", from, "why", why)
	case stateDetached:
		log.Info("tether: session detached", "session", s.id, "client", s.clientID, "why", why)
	case stateClosed:
		log.Info("tether: session ended", "session", s.id, "client", s.clientID, "why", why)
	case stateMoved:
		log.Info("tether: session moved to another node", "session", s.id, "client", s.clientID, "why", why)
	}
}

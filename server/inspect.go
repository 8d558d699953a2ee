package server

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// SessionSort names the order of [Server.QuerySessions].
type SessionSort int

// The orders of [Server.QuerySessions]. Ties are broken by session id, so
// pages stay stable while the numbers hold still.
const (
	// SortAge orders by age, youngest (newest) first.
	SortAge SessionSort = iota
	// SortRTT orders by the latest round-trip time, smallest first.
	SortRTT
	// SortUnacked orders by the number of messages waiting for the
	// client's ack, fewest first.
	SortUnacked
	// SortActivity orders by the time the last frame was received, least
	// recent first.
	SortActivity
)

// SessionQuery selects, orders and pages the node's sessions for
// [Server.QuerySessions]. The zero value is the first 100 sessions, newest
// first (as AdminService.ListSessions lists them).
type SessionQuery struct {
	// ClientID, Topic and Principal keep the sessions whose client id, one
	// of whose topics, or whose principal contains the string (case
	// insensitively); empty keeps all.
	ClientID, Topic, Principal string
	// State keeps the sessions in that state; SESSION_STATE_UNSPECIFIED
	// keeps all.
	State tetherv1.SessionState
	// Sort is the order; Desc reverses it.
	Sort SessionSort
	Desc bool
	// Offset skips that many sessions of the ordered selection; Limit is
	// the most returned: 0 means 100, and more than 1000 means 1000.
	Offset, Limit int
}

// SessionSummary is one session as [Server.QuerySessions] and
// [Server.InspectSession] see it at one moment.
type SessionSummary struct {
	// ID, ClientID and Principal identify the session, its client (from
	// Hello) and its authenticated principal.
	ID, ClientID, Principal string
	State                   tetherv1.SessionState
	// Peer is the address of the current (or last) stream.
	Peer string
	// Created is when the session began; ConnectedAt when its current (or
	// last) stream attached.
	Created, ConnectedAt time.Time
	// LastActivity is when the current stream last received a frame (the
	// zero time while detached).
	LastActivity time.Time
	// ResumeDeadline is when a detached session expires.
	ResumeDeadline time.Time
	Topics         []string
	Interval       time.Duration // the granted heartbeat interval
	RTT            time.Duration // the latest round-trip time; 0 before the first
	Resumes        int
	// Unacked counts the messages sent to the client and not yet
	// acknowledged; Queued those assigned a seq and not yet handed to a
	// stream.
	Unacked, Queued int
	// LastSentSeq and LastAckedSeq are the highest server seqs sent and
	// acknowledged; LastReceivedSeq the highest client seq received.
	LastSentSeq, LastAckedSeq, LastReceivedSeq uint64
}

// SessionPage is the answer of [Server.QuerySessions].
type SessionPage struct {
	// Sessions is the requested page of the selection.
	Sessions []SessionSummary
	// Matched is the size of the whole selection; Total the number of
	// sessions on the node.
	Matched, Total int
	// ByState counts the node's sessions by state.
	ByState map[tetherv1.SessionState]int
}

// QuerySessions filters, orders and pages the node's sessions on the
// server, so a caller showing thousands of them fetches one page at a
// time. It is safe for concurrent use, and it does not consult the
// Authorizer: protect what serves it.
func (srv *Server) QuerySessions(q SessionQuery) SessionPage {
	all := srv.snapshot()
	page := SessionPage{Total: len(all), ByState: map[tetherv1.SessionState]int{}}
	picked := make([]SessionSummary, 0, len(all))
	match := q.matcher()
	for _, s := range all {
		sum, ok := s.summary(match)
		page.ByState[sum.State]++
		if ok && (q.State == tetherv1.SessionState_SESSION_STATE_UNSPECIFIED || q.State == sum.State) {
			picked = append(picked, sum)
		}
	}
	slices.SortFunc(picked, q.compare)
	page.Matched = len(picked)
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	start := min(max(q.Offset, 0), len(picked))
	page.Sessions = picked[start:min(start+limit, len(picked))]
	return page
}

// SessionCounts counts the node's sessions by state, and in all.
func (srv *Server) SessionCounts() (byState map[tetherv1.SessionState]int, total int) {
	all := srv.snapshot()
	byState = map[tetherv1.SessionState]int{}
	for _, s := range all {
		s.mu.Lock()
		byState[s.adminStateLocked()]++
		s.mu.Unlock()
	}
	return byState, len(all)
}

// matcher returns the filter on client id, principal and topics.
func (q SessionQuery) matcher() func(s *Session) bool {
	client, principal, topic := strings.ToLower(q.ClientID), strings.ToLower(q.Principal), strings.ToLower(q.Topic)
	return func(s *Session) bool {
		if !strings.Contains(strings.ToLower(s.clientID), client) || !strings.Contains(strings.ToLower(s.principal), principal) {
			return false
		}
		if topic == "" {
			return true
		}
		for t := range s.topics {
			if strings.Contains(strings.ToLower(t), topic) {
				return true
			}
		}
		return false
	}
}

func (q SessionQuery) compare(a, b SessionSummary) int {
	var c int
	switch q.Sort {
	case SortRTT:
		c = cmp.Compare(a.RTT, b.RTT)
	case SortUnacked:
		c = cmp.Compare(a.Unacked, b.Unacked)
	case SortActivity:
		c = a.LastActivity.Compare(b.LastActivity)
	default:
		c = b.Created.Compare(a.Created) // older is larger: a greater age
	}
	if c == 0 {
		c = strings.Compare(a.ID, b.ID)
	}
	if q.Desc {
		return -c
	}
	return c
}

// summary returns the session's summary and whether it passes match (nil
// passes all); the topics are filled in only for a session that passes.
func (s *Session) summary(match func(*Session) bool) (SessionSummary, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := SessionSummary{
		ID: s.id, ClientID: s.clientID, Principal: s.principal, State: s.adminStateLocked(), Peer: s.peer,
		Created: s.created, ConnectedAt: s.connectedAt, Interval: s.interval, RTT: s.lastRTT,
		Resumes: int(s.resumes), LastAckedSeq: s.ackedOut,
		LastSentSeq: s.sentSeq.Load(), LastReceivedSeq: s.inSeq.Load(),
	}
	if match != nil && !match(s) {
		return sum, false
	}
	sent := max(sum.LastSentSeq, s.ackedOut)
	sum.Unacked = int(sent - s.ackedOut)
	sum.Queued = int(s.outSeq - min(sent, s.outSeq))
	if s.st != nil {
		sum.LastActivity = time.Unix(0, s.st.lastRead.Load())
	}
	if s.state == stateDetached {
		sum.ResumeDeadline = s.resumeDeadline
	}
	sum.Topics = slices.Sorted(maps.Keys(s.topics))
	return sum, true
}

// SessionEvent is one entry of a session's flight recorder.
type SessionEvent struct {
	At     time.Time
	Kind   tetherv1.SessionEventKind
	Detail string
	RTT    time.Duration // for SESSION_EVENT_KIND_RTT
	// Resume is the outcome of a resume attempt, when the event is one.
	Resume tetherv1.ResumeStatus
}

// SessionInspection is one session with its metadata and its flight
// recorder, oldest event first.
type SessionInspection struct {
	SessionSummary
	Metadata map[string]string
	Events   []SessionEvent
}

// ErrNoSession is returned by [Server.InspectSession] and [Server.Kick]
// for a session id the node does not hold.
var ErrNoSession = errors.New("tether/server: no such session on this node")

// InspectSession returns one session of the node with its flight recorder,
// or [ErrNoSession]. It does not consult the Authorizer.
func (srv *Server) InspectSession(id string) (SessionInspection, error) {
	srv.mu.RLock()
	s := srv.sessions[id]
	srv.mu.RUnlock()
	if s == nil {
		return SessionInspection{}, ErrNoSession
	}
	sum, _ := s.summary(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := SessionInspection{SessionSummary: sum, Metadata: maps.Clone(s.metadata)}
	for _, e := range s.rec.ordered() {
		in.Events = append(in.Events, SessionEvent{At: e.at, Kind: e.kind, Detail: e.detail, RTT: e.rtt, Resume: e.resume})
	}
	return in, nil
}

// Kick ends a session for good, as AdminService.CloseSession does: the
// client gets GoAway{CLOSED_BY_ADMIN} with the reason, and the session
// cannot be resumed. It returns [ErrNoSession] for an id the node does
// not hold. It does not consult the Authorizer.
func (srv *Server) Kick(id, reason string) error {
	srv.mu.RLock()
	s := srv.sessions[id]
	srv.mu.RUnlock()
	if s == nil {
		return ErrNoSession
	}
	s.kick(reason)
	return nil
}

// Draining reports whether the node drains, and how many streams are
// still open.
func (srv *Server) Draining() (draining bool, streams int) {
	return srv.isDraining(), int(srv.live.Load())
}

// BrokerErr returns why the broker does not work, as it last reported,
// or nil while it works.
func (srv *Server) BrokerErr() error {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return srv.brokerErr
}

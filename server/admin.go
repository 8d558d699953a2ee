package server

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// admin serves AdminService from the server's live state.
type admin struct {
	tetherv1.UnimplementedAdminServiceServer
	srv *Server
}

// maxEnded bounds how many ended sessions a node keeps for AdminService.
const maxEnded = 1024

// keepEndedLocked keeps s, which just ended (closed or moved), visible to
// AdminService for the resume window, as one of the maxEnded most recently
// ended sessions; older ones are dropped. s.mu is held.
func (srv *Server) keepEndedLocked(s *Session) {
	now := time.Now()
	s.endedAt = now
	srv.ended = append(srv.ended, s)
	drop := max(len(srv.ended)-maxEnded, 0)
	for drop < len(srv.ended) && now.Sub(srv.ended[drop].endedAt) >= srv.cfg.resumeWindow {
		drop++
	}
	if drop > 0 {
		clear(srv.ended[:drop])
		srv.ended = srv.ended[drop:]
	}
}

// endedLocked returns the ended sessions still kept (of one client id when
// clientID is set) that no live session shadows, newest first.
func (srv *Server) endedLocked(clientID string) []*Session {
	var out []*Session
	now := time.Now()
	for i := len(srv.ended) - 1; i >= 0; i-- {
		s := srv.ended[i]
		switch {
		case now.Sub(s.endedAt) >= srv.cfg.resumeWindow:
			return out
		case clientID != "" && s.clientID != clientID, srv.sessions[s.id] != nil:
			continue
		case slices.ContainsFunc(out, func(o *Session) bool { return o.id == s.id }):
			continue // ended twice here (moved away, back, and away again): the latest
		}
		out = append(out, s)
	}
	return out
}

// sessionsNewestFirst snapshots the node's sessions, and those ended
// lately, newest first, of one client id when clientID is set.
func (srv *Server) sessionsNewestFirst(clientID string) []*Session {
	srv.mu.RLock()
	var all []*Session
	if clientID != "" {
		all = collect(srv.byClient[clientID])
	} else {
		all = make([]*Session, 0, len(srv.sessions))
		for _, s := range srv.sessions {
			all = append(all, s)
		}
	}
	all = append(all, srv.endedLocked(clientID)...)
	srv.mu.RUnlock()
	slices.SortFunc(all, func(a, b *Session) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return all
}

// ListSessions lists sessions newest first; the page token is an offset.
func (a *admin) ListSessions(ctx context.Context, req *tetherv1.ListSessionsRequest) (*tetherv1.ListSessionsResponse, error) {
	if err := a.srv.cfg.authz.Admin(ctx); err != nil {
		return nil, err
	}
	return a.list(req)
}

// list is ListSessions without the authorization check.
func (a *admin) list(req *tetherv1.ListSessionsRequest) (*tetherv1.ListSessionsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = 100
	case size > 1000:
		size = 1000
	}
	offset := 0
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "page_token %q is not one this server returned", truncate(tok))
		}
		offset = n
	}
	all := a.srv.sessionsNewestFirst(req.GetClientId())
	resp := &tetherv1.ListSessionsResponse{}
	if offset >= len(all) {
		return resp, nil
	}
	end := min(offset+size, len(all))
	for _, s := range all[offset:end] {
		resp.Sessions = append(resp.Sessions, s.info())
	}
	if end < len(all) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// session returns the session id, live or ended lately (see
// keepEndedLocked).
func (srv *Server) session(id string) (*Session, error) {
	srv.mu.RLock()
	s := srv.sessions[id]
	if s == nil {
		for _, e := range srv.endedLocked("") {
			if e.id == id {
				s = e
				break
			}
		}
	}
	srv.mu.RUnlock()
	if s == nil {
		return nil, status.Errorf(codes.NotFound, "no session %q on server %s: list sessions with ListSessions", truncate(id), srv.cfg.serverID)
	}
	return s, nil
}

// GetSession returns one session with its flight recorder.
func (a *admin) GetSession(ctx context.Context, req *tetherv1.GetSessionRequest) (*tetherv1.GetSessionResponse, error) {
	if err := a.srv.cfg.authz.Admin(ctx); err != nil {
		return nil, err
	}
	s, err := a.srv.session(req.GetSessionId())
	if err != nil {
		return nil, err
	}
	resp := &tetherv1.GetSessionResponse{Session: s.info()}
	s.mu.Lock()
	resp.Events = s.rec.events()
	s.mu.Unlock()
	return resp, nil
}

// CloseSession ends a session for good; a session that ended already stays
// as it is.
func (a *admin) CloseSession(ctx context.Context, req *tetherv1.CloseSessionRequest) (*tetherv1.CloseSessionResponse, error) {
	if err := a.srv.cfg.authz.Admin(ctx); err != nil {
		return nil, err
	}
	s, err := a.srv.session(req.GetSessionId())
	if err != nil {
		return nil, err
	}
	s.kick(req.GetReason())
	return &tetherv1.CloseSessionResponse{}, nil
}

// kick ends the session for an operator, telling the client why.
func (s *Session) kick(reason string) {
	why := "closed by an operator"
	if reason != "" {
		why += ": " + truncate(reason)
	}
	s.mu.Lock()
	s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_CLOSED_BY_ADMIN, why, 0, nil)
	s.unlock()
	s.close(nil, why)
}

// DebugHandler serves the node's sessions as JSON (the ListSessions
// response, up to 1000 sessions, newest first; ?client_id= filters), for an
// admin endpoint such as /debug/sessions. It does not consult the
// Authorizer: protect the endpoint that serves it (tetherd requires a token
// on its admin listener beyond loopback).
func (srv *Server) DebugHandler() http.Handler {
	a := &admin{srv: srv}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := a.list(&tetherv1.ListSessionsRequest{PageSize: 1000, ClientId: r.URL.Query().Get("client_id")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := protojson.MarshalOptions{Indent: "  ", EmitUnpopulated: true}.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

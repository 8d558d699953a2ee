package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Every state change goes through the table: allowed ones record their
// cause and count live streams; the final states refuse any change.
func TestTransitionTable(t *testing.T) {
	t.Parallel()
	srv, err := New(WithServerID("lc"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	s := srv.newSession("p", &tetherv1.Hello{})
	steps := []struct {
		to   state
		ok   bool
		live int64
		kind tetherv1.SessionEventKind
	}{
		{stateDetached, true, 0, tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED},
		{stateConnected, true, 1, tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED},
		{stateClosed, false, 1, 0}, // a connected session detaches first
		{stateMoved, false, 1, 0},
		{stateDetached, true, 0, tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED},
		{stateMoved, true, 0, tetherv1.SessionEventKind_SESSION_EVENT_KIND_TAKEN_OVER},
		{stateConnected, false, 0, 0},
		{stateClosed, false, 0, 0},
	}
	for i, st := range steps {
		before := len(s.rec.ordered())
		s.mu.Lock()
		ok := s.transitionLocked(st.to, event{detail: "step"})
		s.mu.Unlock()
		if ok != st.ok {
			t.Fatalf("step %d: to %v: %v; want %v", i, st.to, ok, st.ok)
		}
		if got := srv.live.Load(); got != st.live {
			t.Fatalf("step %d: %d live streams; want %d", i, got, st.live)
		}
		events := s.rec.ordered()
		switch {
		case !ok && len(events) != before:
			t.Fatalf("step %d: a refused change recorded %v", i, events[len(events)-1])
		case ok && (len(events) != before+1 || events[len(events)-1].kind != st.kind || events[len(events)-1].detail != "step"):
			t.Fatalf("step %d: recorded %v; want one %v event", i, events[before:], st.kind)
		}
	}
	if s.state.proto() != tetherv1.SessionState_SESSION_STATE_MOVED {
		t.Fatalf("admin state %v; want MOVED", s.state.proto())
	}
}

// A closed session stays visible to AdminService, CLOSED with its flight
// recorder, for the resume window, then is gone.
func TestClosedSessionVisibleForTheResumeWindow(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	n := startCoreNode(t, nil, WithResumeWindow(window))
	c, _ := n.connect(t, &tetherv1.Hello{ClientId: "k"})
	w := welcomeOf(t, c)
	a := &admin{srv: n.srv}
	ctx := context.Background()
	if _, err := a.CloseSession(ctx, &tetherv1.CloseSessionRequest{SessionId: w.GetSessionId(), Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	closedAt := time.Now()
	r, err := a.GetSession(ctx, &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
	if err != nil {
		t.Fatalf("GetSession right after close: %v", err)
	}
	if r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("state %v; want CLOSED", r.GetSession().GetState())
	}
	if last := r.GetEvents()[len(r.GetEvents())-1]; last.GetKind() != tetherv1.SessionEventKind_SESSION_EVENT_KIND_CLOSED {
		t.Fatalf("last event %v; want CLOSED", last)
	}
	l, err := a.ListSessions(ctx, &tetherv1.ListSessionsRequest{ClientId: "k"})
	if err != nil || len(l.GetSessions()) != 1 {
		t.Fatalf("ListSessions right after close: %v %v", l, err)
	}
	waitCore(t, func() bool {
		_, err := a.GetSession(ctx, &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
		return status.Code(err) == codes.NotFound
	})
	if gone := time.Since(closedAt); gone < window {
		t.Fatalf("gone after %v; want the resume window, %v", gone, window)
	}
	if l, _ := a.ListSessions(ctx, &tetherv1.ListSessionsRequest{}); len(l.GetSessions()) != 0 {
		t.Fatalf("ListSessions after the window: %v", l)
	}
}

// A session that moved to another node shows as MOVED, not CLOSED.
func TestMovedSessionVisibleAsMoved(t *testing.T) {
	t.Parallel()
	n := startCoreNode(t, nil)
	c, _ := n.connect(t, &tetherv1.Hello{})
	w := welcomeOf(t, c)
	s, err := n.srv.session(w.GetSessionId())
	if err != nil {
		t.Fatal(err)
	}
	s.release("node-2")
	for { // GoAway{TAKEN_OVER}, then the end
		if _, err := c.Recv(); err != nil {
			break
		}
	}
	r, err := (&admin{srv: n.srv}).GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetSession().GetState() != tetherv1.SessionState_SESSION_STATE_MOVED {
		t.Fatalf("state %v; want MOVED", r.GetSession().GetState())
	}
	if len(n.srv.snapshot()) != 0 {
		t.Fatal("a moved session is still among the node's sessions")
	}
}

// The ended sessions kept for AdminService are bounded in number.
func TestEndedSessionsBounded(t *testing.T) {
	t.Parallel()
	srv, err := New(WithServerID("lc"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for range maxEnded + 10 {
		srv.keepEndedLocked(srv.newSession("p", &tetherv1.Hello{}))
	}
	if got := len(srv.ended); got != maxEnded {
		t.Fatalf("%d ended sessions kept; want %d", got, maxEnded)
	}
	if got := len(srv.endedLocked("")); got != maxEnded {
		t.Fatalf("%d ended sessions listed; want %d", got, maxEnded)
	}
}

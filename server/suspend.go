package server

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// DefaultMaxSuspendWindow is the longest a suspended session is kept by
// default: an hour, time for a phone's app to come back from the
// background.
const DefaultMaxSuspendWindow = time.Hour

// WithMaxSuspendWindow sets the longest window a session suspended by its
// client (a Suspend frame: its application went to the background) is kept
// for, instead of the resume window; Welcome.liveness.max_suspend_window
// announces it. Messages for a suspended session queue in its outbound log
// (bounded as always) until it resumes. The default is
// [DefaultMaxSuspendWindow]; it must be positive.
func WithMaxSuspendWindow(d time.Duration) Option {
	return optionFunc(func(c *config) error { c.maxSuspendWindow = d; return nil })
}

// suspendState is a session's Suspend: the window asked for on the
// current stream (zero: none) and whether the session is suspended now (it
// detached after a Suspend).
type suspendState struct {
	window    time.Duration
	suspended bool
}

// livenessMetrics are the series of adaptive heartbeats and suspended
// sessions (the suspended gauge is tether_sessions{state="suspended"}).
type livenessMetrics struct {
	heartbeatChanges  prometheus.Counter
	suspends          prometheus.Counter
	suspendedMessages prometheus.Counter
}

func newLivenessMetrics() livenessMetrics {
	return livenessMetrics{
		heartbeatChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_heartbeat_changes_total",
			Help: "SetHeartbeat frames taken: a client's adaptive heartbeat moved its interval."}),
		suspends: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_suspends_total",
			Help: "Sessions suspended by their client (Suspend frames)."}),
		suspendedMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_suspended_messages_total",
			Help: "Messages queued for a suspended session: they wait for its resume."}),
	}
}

// suspend handles Suspend: the session is kept for the suspend window
// (Suspend.window, clamped into [the resume window, the maximum suspend
// window]), with no heartbeat expected, and the stream ends with OK once the frames
// queued before it are written.
func (st *stream) suspend(f *tetherv1.Suspend) error {
	window := st.srv.cfg.maxSuspendWindow
	if d := f.GetWindow(); d != nil {
		if d.CheckValid() != nil || d.AsDuration() < 0 {
			return status.Error(codes.InvalidArgument, "suspend.window must be a valid, non-negative duration (zero asks for Welcome.liveness.max_suspend_window)")
		}
		if d.AsDuration() > 0 {
			window = min(window, d.AsDuration())
		}
	}
	window = max(window, st.srv.cfg.resumeWindow) // never shorter than an unsuspended session's
	s := st.sess
	s.mu.Lock()
	if s.st != st {
		s.mu.Unlock()
		return nil
	}
	s.susp.window = window
	s.mu.Unlock()
	st.srv.metrics.suspends.Inc()
	s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_SUSPENDED,
		detail: fmt.Sprintf("suspended by the client: kept for %v without heartbeats; messages queue until it resumes", window)})
	st.closeAfterFlush(nil) // detaches the session (suspended, see noteSuspendLocked) and ends the stream with OK
	return nil
}

// noteSuspendLocked follows a change of state: a session that detaches
// after a Suspend is suspended; one that leaves detached (resumed, closed,
// expired, moved) no longer is, nor is a stream's Suspend carried over to
// the next stream.
func (s *Session) noteSuspendLocked(from, to state) {
	switch {
	case to == stateDetached && s.susp.window > 0:
		s.susp.suspended = true
		s.srv.suspended.Add(1)
	case from == stateDetached && s.susp.suspended:
		s.susp.suspended = false
		s.srv.suspended.Add(-1)
	}
	if to == stateConnected {
		s.susp.window = 0
	}
}

// resumeWindowLocked is how long the session waits for a resume once its
// stream is gone: the suspend window after a Suspend, else the resume
// window.
func (s *Session) resumeWindowLocked() time.Duration {
	if s.susp.window > 0 {
		return s.susp.window
	}
	return s.srv.cfg.resumeWindow
}

// adminStateLocked is the session's state as AdminService shows it:
// SUSPENDED for a detached session its client suspended.
func (s *Session) adminStateLocked() tetherv1.SessionState {
	if s.state == stateDetached && s.susp.suspended {
		return tetherv1.SessionState_SESSION_STATE_SUSPENDED
	}
	return s.state.proto()
}

// countSuspendedLocked counts a message queued for the session while it is
// suspended.
func (s *Session) countSuspendedLocked() {
	if s.susp.suspended {
		s.srv.metrics.suspendedMessages.Inc()
	}
}

package main

import tetherv1 "github.com/tetherhq/tether/gen/tether/v1"

// liveSessions counts the listed sessions that have not ended: the server
// keeps a closed session listed, as CLOSED, for its resume window.
func liveSessions(l *tetherv1.ListSessionsResponse) int {
	n := 0
	for _, s := range l.GetSessions() {
		if s.GetState() != tetherv1.SessionState_SESSION_STATE_CLOSED {
			n++
		}
	}
	return n
}

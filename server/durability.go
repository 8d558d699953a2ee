package server

import "github.com/tetherhq/tether/broker"

// resumeAnywhere reports whether a session resumes on any node of the
// deployment without loss (Welcome.resume_anywhere): the broker is shared,
// and so are its logs. A log kept on its writer's node (broker.Bounded, as
// package nats keeps them in DurabilityNode) resumes elsewhere with a gap.
func (srv *Server) resumeAnywhere() bool {
	if !srv.broker.Shared() {
		return false
	}
	_, onNode := srv.broker.Log("").(broker.Bounded)
	return !onNode
}

package server

import "github.com/tetherhq/tether/broker"

var _ broker.SessionReceiver = receiver{}

// DeliverSession queues m to session id alone, whatever m's target (see
// broker.SessionReceiver): a shared broker hands on that way a message that
// another node queued to the session but could not store before the
// session moved here.
func (r receiver) DeliverSession(id string, m *broker.Message) (int, error) {
	r.srv.mu.RLock()
	s := r.srv.sessions[id]
	r.srv.mu.RUnlock()
	if s == nil {
		return 0, nil
	}
	switch s.enqueue(m, true) {
	case queued:
		return 1, nil
	case refused:
		return 0, broker.ErrFull
	}
	return 0, nil
}

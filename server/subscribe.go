package server

import (
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// A Subscribe or Unsubscribe frame is all or nothing, like Hello's topics:
// one topic that is invalid, not permitted, over Limits.max_topics or that
// the broker failed to bind leaves the session's subscriptions as they
// were, and is answered by an Error frame naming it (Error.topic) and the
// frame (Error.request_id). The stream goes on. Hello's same checks end the
// stream with the same codes.

// topicError is a subscription problem with one topic. Its status is err's.
type topicError struct {
	topic string
	err   error
}

func (e *topicError) Error() string { return e.err.Error() }

func (e *topicError) Unwrap() error { return e.err }

// GRPCStatus is err's status, so that a topicError ends a stream (Hello) or
// fills an Error frame with its code.
func (e *topicError) GRPCStatus() *status.Status { return status.Convert(e.err) }

// subscribe handles a Subscribe frame.
func (st *stream) subscribe(f *tetherv1.Subscribe) {
	for _, t := range f.GetTopics() {
		err := validTopic(t)
		if err == nil {
			err = st.srv.cfg.authz.Subscribe(st.ss.Context(), t)
		}
		if err != nil {
			st.topicError(f.GetRequestId(), &topicError{t, err})
			return
		}
	}
	if err := st.sess.subscribe(f.GetTopics()); err != nil {
		st.topicError(f.GetRequestId(), err)
	}
}

// unsubscribe handles an Unsubscribe frame; a topic not held is a no-op.
func (st *stream) unsubscribe(f *tetherv1.Unsubscribe) {
	for _, t := range f.GetTopics() {
		if err := validTopic(t); err != nil {
			st.topicError(f.GetRequestId(), &topicError{t, err})
			return
		}
	}
	st.sess.unsubscribe(f.GetTopics())
}

// topicError answers the Subscribe or Unsubscribe frame requestID with an
// Error frame of err's code, naming err's topic.
func (st *stream) topicError(requestID uint64, err error) {
	e := &tetherv1.Error{RequestId: requestID}
	var te *topicError
	if errors.As(err, &te) {
		e.Topic = strings.ToValidUTF8(truncate(te.topic), "\uFFFD")
	}
	st.sess.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: err.Error()})
	st.pushError(err, e)
}

package client

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// TopicError is the server's refusal of a topic in a Subscribe or
// Unsubscribe: a bad name, one the principal may not subscribe to, one
// too many (Welcome.limits.max_topics), or a broker that could not bind
// it. status.Code and [CodeOf] see its code.
type TopicError struct {
	// Topic is the topic the server named, if it named one.
	Topic string
	// Err is the server's error, a gRPC status error.
	Err error
}

// Error names the topic, the code and the server's reason.
func (e *TopicError) Error() string {
	st := status.Convert(e.Err)
	if e.Topic == "" {
		return fmt.Sprintf("tether/client: the server refused the request: %s: %s", st.Code(), st.Message())
	}
	return fmt.Sprintf("tether/client: the server refused topic %q: %s: %s", e.Topic, st.Code(), st.Message())
}

// Unwrap returns Err.
func (e *TopicError) Unwrap() error { return e.Err }

// GRPCStatus returns Err's status.
func (e *TopicError) GRPCStatus() *status.Status { return status.Convert(e.Err) }

// requests matches the server's Error frames to the Subscribe and
// Unsubscribe frames they answer, by request_id.
type requests struct {
	mu      sync.Mutex
	last    uint64
	waiting map[uint64]chan *tetherv1.Error
}

// add returns a fresh request id and the channel its answer arrives on.
func (r *requests) add() (uint64, <-chan *tetherv1.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting = make(map[uint64]chan *tetherv1.Error)
	}
	r.last++
	ch := make(chan *tetherv1.Error, 1)
	r.waiting[r.last] = ch
	return r.last, ch
}

// drop forgets id.
func (r *requests) drop(id uint64) {
	r.mu.Lock()
	delete(r.waiting, id)
	r.mu.Unlock()
}

// answer hands e to the caller waiting for e.request_id; it reports false
// when none waits (the caller gave up, or the frame was a resume's).
func (r *requests) answer(id uint64, e *tetherv1.Error) bool {
	r.mu.Lock()
	ch, ok := r.waiting[id]
	delete(r.waiting, id)
	r.mu.Unlock()
	if ok {
		ch <- e
	}
	return ok
}

// request sends the Subscribe or Unsubscribe frame that build makes for
// a fresh request id, and waits for the server's answer: an Error frame
// with that id (returned as a *TopicError), or the pong to a ping sent
// after it (the server handles a stream's frames in order, so it has
// handled the request without complaint; see pushBarrier). With no stream, or when
// the stream ends first, it returns nil: the topics are part of the
// session's state, which the next Hello or resume carries.
func (s *Session) request(ctx context.Context, build func(id uint64) *tetherv1.ConnectRequest) error {
	select {
	case <-s.done:
		return s.errClosed()
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	c := s.current()
	if c == nil {
		return nil
	}
	id, answer := s.requests.add()
	defer s.requests.drop(id)
	handled, exact := c.pushBarrier(build(id))
	for {
		select {
		case e := <-answer:
			return &TopicError{Topic: e.GetTopic(), Err: status.Error(codes.Code(e.GetCode()), e.GetMessage())}
		case <-handled:
			if exact {
				return nil
			}
			handled, _ = c.pushBarrier(nil) // exact: see pushBarrier
			exact = true
		case <-c.done:
			return nil
		case <-s.done:
			return s.errClosed()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

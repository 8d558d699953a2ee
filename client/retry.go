package client

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/backoff"
	ibackoff "github.com/tetherhq/tether/internal/backoff"
)

// SendRetry bounds how a session re-sends messages the server did not
// handle. A message the server refused for now (an Error frame for its seq
// with UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED or
// CANCELED, and no ack) is sent again in place, with the messages after
// it, keeping their order; it is given up once the server has handled
// nothing for Within. A message the server acknowledged as failed with
// NOT_FOUND (its target is connected nowhere right now) is re-sent with
// its idempotency key at the end of the send buffer (after the messages
// sent since, which it therefore follows on arrival), counting against the
// buffer's size while it waits, up to MaxAttempts sends within Within;
// that is for Send only: SendWait and Request return NOT_FOUND at once,
// since their caller is there to decide, and so RESOURCE_EXHAUSTED (the
// target's outbound log is full), which they withdraw from the go-back-N
// re-sends.
//
// The zero SendRetry is not valid; start from [DefaultSendRetry].
type SendRetry struct {
	// MaxAttempts is how many times a message is sent in all, the first
	// time included; 1 re-sends nothing. It must be at least 1. The
	// current default value is 10.
	MaxAttempts int
	// Within bounds the re-sends in time: none is made later than Within
	// after the server first refused the message. It must be positive.
	// The current default value is 30 seconds, about what a receiver on a
	// node that died takes to resume on another.
	Within time.Duration
	// Backoff paces one message's re-sends: full jitter, growing from Base
	// to Cap (ResetAfter is not used). The current default value is Base
	// 250ms, Cap 5s, Multiplier 2.
	Backoff backoff.Config
}

// DefaultSendRetry returns the default policy: up to 10 sends within 30
// seconds of the first refusal, with delays drawn below 250ms, 500ms, 1s,
// 2s, 4s, then 5s. Each call returns a fresh value.
func DefaultSendRetry() SendRetry {
	return SendRetry{
		MaxAttempts: 10,
		Within:      30 * time.Second,
		Backoff:     backoff.Config{Base: 250 * time.Millisecond, Cap: 5 * time.Second, Multiplier: 2},
	}
}

// Validate reports what is out of range in r, or nil.
func (r SendRetry) Validate() error {
	var errs []error
	if r.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts is %d; set it to 1 or more (1 re-sends nothing)", r.MaxAttempts))
	}
	if r.Within <= 0 {
		errs = append(errs, fmt.Errorf("Within is %v; set it above zero (the default is 30s)", r.Within))
	}
	if err := r.Backoff.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WithSendRetry sets how messages the server refused with a retryable
// code are re-sent. The default is [DefaultSendRetry].
func WithSendRetry(r SendRetry) Option {
	return optionFunc(func(c *config) error { c.sendRetry = r; return nil })
}

// WithOnSendError calls f for every message that Send or SendWait
// accepted and that will never be handled: the server refused it with a
// final code, or with retryable ones until [SendRetry] gave up (err is a
// *[SendError]); the DropOldest policy dropped it ([ErrDropped]); or the
// session closed before the server acknowledged it (an error that wraps
// [ErrClosed]; the server may have handled it). m is the message as Send
// was given it, with the idempotency key it was sent with, so that it can
// be sent again. f runs on the goroutine
// of WithOnState's callback, in order with it, outside every lock. SendWait
// also returns the error to its caller, the
// tether_client_messages_failed_total metric counts it, and the logger
// (WithLogger) records it at Warn, with f or without.
func WithOnSendError(f func(m Message, err error)) Option {
	return optionFunc(func(c *config) error { c.onSendError = f; return nil })
}

// SendError is why a message was not handled: the server's refusal (Err,
// a gRPC status: status.Code(err) works on a SendError) after Attempts
// sends.
//
// The codes UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED
// and NOT_FOUND (the target is not connected anywhere right now) are
// retried as [SendRetry] says; with them, Attempts is how many sends were
// refused. NOT_FOUND and RESOURCE_EXHAUSTED are retried only for Send:
// SendWait and Request, whose caller waits for the answer, get them at
// once. Other codes (INVALID_ARGUMENT, PERMISSION_DENIED,
// FAILED_PRECONDITION, UNAUTHENTICATED, …) are final: a retry could not
// help, and the message fails at once, with Attempts 1.
type SendError struct {
	Attempts int
	Err      error
}

// Error says how many sends the server refused, and its last refusal.
func (e *SendError) Error() string {
	if e.Attempts <= 1 {
		return "tether/client: the server did not handle the message: " + e.Err.Error()
	}
	return fmt.Sprintf("tether/client: the server did not handle the message in %d attempts: %v", e.Attempts, e.Err)
}

// Unwrap returns Err.
func (e *SendError) Unwrap() error { return e.Err }

// retryable reports whether a refusal with code may succeed later.
func retryable(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.NotFound:
		return true
	}
	return false
}

// retryState follows the re-sends of one refused message.
type retryState struct {
	attempts int       // sends refused so far
	first    time.Time // first refusal
	bo       *ibackoff.Backoff
	timer    *time.Timer // armed while the re-send waits
}

// nextRetry counts a refusal of p with err and returns the delay before
// p's re-send, or the error p fails with.
func (r SendRetry) nextRetry(p *pending, err error) (time.Duration, error) {
	if p.retry == nil {
		bo, _ := ibackoff.New(r.Backoff, nil) // validated in New
		p.retry = &retryState{first: time.Now(), bo: bo}
	}
	st := p.retry
	st.attempts++
	fail := &SendError{Attempts: st.attempts, Err: err}
	code := status.Code(err)
	if !retryable(code) || st.attempts >= r.MaxAttempts || code == codes.NotFound && p.waited {
		return 0, fail
	}
	d := st.bo.Next()
	if time.Since(st.first)+d > r.Within {
		return 0, fail
	}
	return d, nil
}

// lossReason is the metric label of a lost message's error.
func lossReason(err error) string {
	var se *SendError
	switch {
	case errors.As(err, &se):
		return status.Code(se.Err).String()
	case errors.Is(err, ErrDropped):
		return "dropped"
	}
	return "closed"
}

package client

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Error is why the server (or the transport on its way) ended a stream of
// the session, classified by the error model of tether.v1.TetherService:
// a terminal error ends the session for good (the StateClosed change
// carries it, and every call made after it returns an error that wraps
// it and [ErrClosed]); any other is retried by reconnecting and resuming.
// It is shaped after connect-go's *connect.Error: inspect it with
// errors.As, or take its code with [CodeOf]. status.Code and
// status.FromError work on it too.
type Error struct {
	code     codes.Code
	message  string
	terminal bool
	backend  string
	welcomed bool         // the stream had its Welcome
	goAway   *GoAwayError // the GoAway that preceded the end, if any
	err      error        // the underlying error
}

// Code is the gRPC status code the stream ended with; OK when the server
// ended it cleanly (after a GoAway, or after the client's Close).
func (e *Error) Code() codes.Code { return e.code }

// Message is the server's status message, without the code or a prefix.
func (e *Error) Message() string { return e.message }

// Terminal reports whether the error ended the session: reconnecting
// could only repeat it (see the error model in tether_service.proto).
func (e *Error) Terminal() bool { return e.terminal }

// Backend is the address of the backend that ended the stream.
func (e *Error) Backend() string { return e.backend }

// GoAway returns the GoAway the server sent before it ended the stream, or
// nil when it sent none.
func (e *Error) GoAway() *GoAwayError { return e.goAway }

// Error says which backend ended the stream, with which code and why.
func (e *Error) Error() string {
	s := fmt.Sprintf("tether/client: %s ended the stream: %s", e.backend, e.code)
	if !e.welcomed {
		s = fmt.Sprintf("tether/client: opening a stream to %s: %s", e.backend, e.code)
	}
	if e.message != "" {
		s += ": " + e.message
	}
	if e.goAway != nil {
		s += fmt.Sprintf(" (after go_away %s: %s)", e.goAway.Reason, e.goAway.Message)
	}
	return s
}

// Unwrap returns the GoAway when one came, else the underlying error (a
// gRPC status error, as the transport returned it).
func (e *Error) Unwrap() error {
	if e.goAway != nil {
		return e.goAway
	}
	return e.err
}

// GRPCStatus returns the error as a gRPC status, so that status.Code and
// status.FromError see its code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.code, e.message) }

// CodeOf returns the gRPC code of err: OK for nil, the code of an [*Error]
// or of a gRPC status error that err wraps, and Unknown for any other
// error (a local one: the dial failed, nothing was heard, Close).
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	return codes.Unknown
}

// IsTerminal reports whether err (or an error it wraps) is an [*Error]
// that ended the session for good.
func IsTerminal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.terminal
}

// streamError classifies how a stream ended, err being what the stream's
// Recv returned (io.EOF when the server ended it with OK) and ga the
// GoAway that came before, if any. welcomed says whether the stream had
// got its Welcome: UNAUTHENTICATED before it means the credentials were
// refused (terminal), after it that they expired (the session reconnects
// with fresh ones; refused again, it ends). An error that is no gRPC
// status (none from the server) is returned as it is.
func streamError(backend string, err error, ga *GoAwayError, welcomed bool) error {
	e := &Error{backend: backend, welcomed: welcomed, goAway: ga, err: err}
	if st, ok := status.FromError(err); ok {
		e.code, e.message = st.Code(), st.Message()
	} else if ga == nil {
		return err
	}
	if ga != nil {
		e.terminal = !ga.Reconnect()
	} else {
		e.terminal = terminalCode(e.code, welcomed)
	}
	return e
}

// terminalCode is the error model's class of a code that ended a stream
// without a GoAway.
func terminalCode(code codes.Code, welcomed bool) bool {
	switch code {
	case codes.Unauthenticated:
		return !welcomed
	case codes.OK, codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown:
		return false
	case codes.Canceled:
		// Not from tether: the transport reports the client's own
		// cancellation (a stream the session cut) this way.
		return false
	}
	// INVALID_ARGUMENT, PERMISSION_DENIED, ABORTED, and every code tether
	// never sends (UNIMPLEMENTED: not a tether server).
	return true
}

// permanent reports whether err ends the session for good.
func permanent(err error) bool { return IsTerminal(err) }

// GoAwayReason says why the server sent a GoAway and, from the reason
// alone, whether the session reconnects. The values are those of
// tether.v1.GoAwayReason.
type GoAwayReason int32

// The GoAway reasons; see tether.v1.GoAwayReason.
const (
	GoAwayUnspecified      GoAwayReason = 0 // never sent
	GoAwayDrain            GoAwayReason = 1 // the server is draining: reconnect elsewhere and resume
	GoAwayMaxAge           GoAwayReason = 2 // the stream reached its maximum age: reconnect and resume
	GoAwayTakenOver        GoAwayReason = 3 // a newer stream or session took over: the session ends
	GoAwaySlowConsumer     GoAwayReason = 4 // the client read too slowly: reconnect with backoff and resume
	GoAwayClosedByAdmin    GoAwayReason = 5 // an operator closed the session: it ends
	GoAwayProtocolError    GoAwayReason = 6 // the client broke the protocol: the session ends
	GoAwayHeartbeatTimeout GoAwayReason = 7 // the server heard nothing for dead_after: reconnect and resume
	GoAwayOverloaded       GoAwayReason = 8 // the server is at its session limit: reconnect elsewhere
)

// String returns the reason's name in the protocol, e.g.
// "GO_AWAY_REASON_DRAIN".
func (r GoAwayReason) String() string { return tetherv1.GoAwayReason(r).String() }

// Reconnect reports whether the reason asks the client to reconnect. An
// unknown reason (from a newer server) is treated as retryable.
func (r GoAwayReason) Reconnect() bool {
	switch r {
	case GoAwayTakenOver, GoAwayClosedByAdmin, GoAwayProtocolError:
		return false
	}
	return true
}

// GoAwayError is the GoAway the server sent before it ended a stream. An
// [*Error] wraps it: errors.As finds it.
type GoAwayError struct {
	// Reason says why, and whether the session reconnects.
	Reason GoAwayReason
	// Message is the server's detail.
	Message string
	// RetryAfter and RetryJitter pace the reconnect: the session waits
	// RetryAfter plus a random part of RetryJitter.
	RetryAfter, RetryJitter time.Duration
	// SuggestedBackend is a backend the server suggests, if any.
	SuggestedBackend string
}

func newGoAwayError(g *tetherv1.GoAway) *GoAwayError {
	return &GoAwayError{
		Reason:           GoAwayReason(g.GetReason()),
		Message:          g.GetMessage(),
		RetryAfter:       g.GetRetryAfter().AsDuration(),
		RetryJitter:      g.GetRetryJitter().AsDuration(),
		SuggestedBackend: g.GetSuggestedBackend(),
	}
}

// Error says the reason and the server's message.
func (e *GoAwayError) Error() string {
	return fmt.Sprintf("tether/client: go_away %s: %s", e.Reason, e.Message)
}

// Reconnect reports whether the reason asks the client to reconnect.
func (e *GoAwayError) Reconnect() bool { return e.Reason.Reconnect() }

// ResumeStatus is the outcome of a Hello's resume request. The values are
// those of tether.v1.ResumeStatus.
type ResumeStatus int32

// The resume outcomes; see tether.v1.ResumeStatus.
const (
	ResumeUnspecified       ResumeStatus = 0 // never sent
	ResumeNotRequested      ResumeStatus = 1 // a fresh session, as asked
	ResumeResumed           ResumeStatus = 2 // resumed; nothing was lost
	ResumeResumedWithGap    ResumeStatus = 3 // resumed; StateChange.Lost names what is gone
	ResumeUnknownSession    ResumeStatus = 4 // no such session here: a fresh one was opened
	ResumeExpired           ResumeStatus = 5 // its resume window ended: a fresh one was opened
	ResumePrincipalMismatch ResumeStatus = 6 // it belongs to another principal
	ResumeClosed            ResumeStatus = 7 // it was closed and cannot be resumed
	ResumeSeqMismatch       ResumeStatus = 8 // client and server disagree on its history
)

// String returns the status's name in the protocol, e.g.
// "RESUME_STATUS_RESUMED".
func (r ResumeStatus) String() string { return tetherv1.ResumeStatus(r).String() }

// SeqRange is an inclusive range of sequence numbers.
type SeqRange struct {
	First, Last uint64
}

func newSeqRange(r *tetherv1.SeqRange) *SeqRange {
	if r == nil {
		return nil
	}
	return &SeqRange{First: r.GetFirst(), Last: r.GetLast()}
}

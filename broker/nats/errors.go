package nats

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
)

// errNotReady reports that the broker has no handle on its JetStream
// streams yet: creating them has not succeeded since Start (JetStream may
// be electing a leader). It matches [broker.ErrUnavailable].
var errNotReady = unavailable(errors.New("tether/broker/nats: the JetStream streams are not ready (JetStream may be electing a leader); retry"))

// unavailableError marks err as transient: it matches
// [broker.ErrUnavailable] and reads as err.
type unavailableError struct{ err error }

func (e unavailableError) Error() string        { return e.err.Error() }
func (e unavailableError) Unwrap() error        { return e.err }
func (e unavailableError) Is(target error) bool { return target == broker.ErrUnavailable }

// unavailable marks err as transient (see [broker.ErrUnavailable]).
func unavailable(err error) error {
	if err == nil || errors.Is(err, broker.ErrUnavailable) {
		return err
	}
	return unavailableError{err}
}

// transient reports whether err, from nats.go or JetStream, is one a later
// call may not meet: NATS unreachable or reconnecting, a request that got
// no answer in time, JetStream without a leader or not answering.
func transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrStaleConnection),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamPublisherClosed),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return true
	}
	if errors.As(err, new(holderGone)) {
		return true
	}
	var api *jetstream.APIError
	// 503: JetStream or its cluster is not available (no leader, no
	// quorum); 408: the request timed out inside the cluster.
	return errors.As(err, &api) && (api.Code == http.StatusServiceUnavailable || api.Code == http.StatusRequestTimeout)
}

// callErr settles the error a public method returns: broker.ErrClosed for
// a call that raced with Close, and transient failures marked so that they
// match broker.ErrUnavailable.
func (b *Broker) callErr(err *error) {
	switch {
	case *err == nil:
	case b.closed.Load():
		*err = broker.ErrClosed
	case errors.Is(*err, nats.ErrReconnectBufExceeded):
		// nats.go's words for a publish while reconnecting without a
		// reconnect buffer (see ConnectOptions).
		*err = unavailable(fmt.Errorf("%w (NATS is unreachable and the broker does not queue while reconnecting: retry)", *err))
	case transient(*err):
		*err = unavailable(*err)
	}
}

package server

import (
	"errors"
	"testing"
)

func TestWithRetryNeverDoubles(t *testing.T) {
	t.Parallel()
	for cause, want := range map[string]string{
		"tether/broker/nats: NATS is unreachable (RECONNECTING): the message was not sent; retry": "tether/broker/nats: NATS is unreachable (RECONNECTING): the message was not sent; retry",
		"routing failed; the message may or may not have arrived: retry with an idempotency key":  "routing failed; the message may or may not have arrived: retry with an idempotency key",
		"timeout": "timeout; retry",
	} {
		if got := withRetry(errors.New(cause)); got != want {
			t.Errorf("withRetry(%q) = %q; want %q", cause, got, want)
		}
	}
}

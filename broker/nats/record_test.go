package nats_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// Keys recorded without waiting are stored, in the order recorded, and
// another node sees them as Seen's would be; Record on a closed broker
// reports it at once.
func TestRecord(t *testing.T) {
	t.Parallel()
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	start := func() *natsbroker.Broker {
		b, err := natsbroker.Connect(url, natsbroker.Options{Prefix: prefix, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Start(t.Context(), "n"+prefix, nopReceiver{}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, other := start(), start()
	const n = 200
	done := make(chan int, n)
	for i := range n {
		a.Record("scope", fmt.Sprint(i), time.Minute, func(err error) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
			}
			done <- i
		})
	}
	for want := range n {
		select {
		case got := <-done:
			if got != want {
				t.Fatalf("record %d ended before record %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d never ended", want)
		}
	}
	ctx := context.Background()
	for _, key := range []string{"0", fmt.Sprint(n - 1)} {
		if ok, err := other.Recorded(ctx, "scope", key); err != nil || !ok {
			t.Errorf("Recorded(%s) on another node = %v, %v; want true", key, ok, err)
		}
		if dup, err := other.Seen(ctx, "scope", key, time.Minute); err != nil || !dup {
			t.Errorf("Seen(%s) on another node = %v, %v; want a duplicate", key, dup, err)
		}
	}
	if ok, err := other.Recorded(ctx, "scope", "never"); err != nil || ok {
		t.Errorf("Recorded(never) = %v, %v; want false", ok, err)
	}

	_ = a.Close()
	closed := make(chan error, 1)
	a.Record("scope", "late", time.Minute, func(err error) { closed <- err })
	if err := <-closed; !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Record after Close: %v; want broker.ErrClosed", err)
	}
}

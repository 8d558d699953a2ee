package client

import (
	"context"
	"testing"
	"testing/synctest"
)

// wait waits for callbacks queued or running; from inside a callback it
// returns at once instead of waiting for itself (Close may be called from
// a callback). No goroutine id is involved.
func TestDispatcherWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var d dispatcher
		if err := d.wait(t.Context()); err != nil {
			t.Fatalf("idle: %v", err)
		}
		// A queue the loop has not started on: wait blocks until it has
		// run, callbacks pushed meanwhile included.
		ran := 0
		d.queue = []func(){func() { ran++ }}
		d.running, d.idle = true, make(chan struct{})
		waited := make(chan error, 1)
		go func() { waited <- d.wait(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("wait returned (%v) before the queued callback ran", err)
		default:
		}
		go d.loop()
		if err := <-waited; err != nil || ran != 1 {
			t.Fatalf("wait = %v after %d callbacks, want nil after 1", err, ran)
		}

		// A callback running: a wait from elsewhere waits for it and for
		// what is queued behind it.
		release, started := make(chan struct{}), make(chan struct{})
		d.push(func() { close(started); <-release })
		d.push(func() { ran++ })
		<-started
		go func() { waited <- d.wait(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("wait returned (%v) while a callback was running", err)
		default:
		}
		close(release)
		if err := <-waited; err != nil || ran != 2 {
			t.Fatalf("wait = %v after %d callbacks, want nil after 2", err, ran)
		}

		inner := make(chan error, 1)
		d.push(func() { inner <- d.wait(context.Background()) })
		synctest.Wait() // a deadlock would leave the bubble's goroutines blocked: the test fails
		select {
		case err := <-inner:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("wait from inside a callback did not return")
		}
		if err := d.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// dispatcherLoop names the loop as runtime frames do: a rename of the
// method must not silently turn inDispatcherLoop off.
func TestDispatcherLoopName(t *testing.T) {
	t.Parallel()
	if want := "github.com/tetherhq/tether/client.(*dispatcher).loop"; dispatcherLoop != want {
		t.Fatalf("dispatcherLoop = %q, want %q", dispatcherLoop, want)
	}
	if inDispatcherLoop() {
		t.Fatal("a test goroutine reported as inside a callback")
	}
}

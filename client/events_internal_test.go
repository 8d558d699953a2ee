package client

import (
	"context"
	"testing"
	"time"
)

// wait from another goroutine waits for the running callback and the queue;
// from inside a callback it returns at once instead of waiting for itself.
func TestDispatcherWait(t *testing.T) {
	var d dispatcher
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	d.push(func() {
		close(started)
		<-release
	})
	d.push(func() { close(done) })
	<-started
	waited := make(chan error, 1)
	go func() { waited <- d.wait(context.Background()) }()
	select {
	case err := <-waited:
		t.Fatalf("wait returned (%v) while a callback was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatal("wait returned before the queued callback ran")
	}

	inner := make(chan error, 1)
	d.push(func() { inner <- d.wait(context.Background()) })
	select {
	case err := <-inner:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait from inside a callback deadlocked")
	}
}

func TestGoroutineID(t *testing.T) {
	here := goroutineID()
	other := make(chan uint64)
	go func() { other <- goroutineID() }()
	if o := <-other; here == 0 || o == 0 || o == here {
		t.Errorf("goroutine ids %d and %d", here, o)
	}
}

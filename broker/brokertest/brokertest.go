// Package brokertest checks that a [broker.Broker] keeps the promises
// documented in package broker, in the spirit of [testing/slogtest]. Every
// implementation runs the same suite from its own tests:
//
//	func TestBroker(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) broker.Broker {
//			return memory.New()
//		})
//	}
package brokertest

import (
	"bytes"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
)

// defaultTimeout bounds what must happen: a call that has not returned by
// then is taken for a deadlock.
const defaultTimeout = 10 * time.Second

// Run checks the brokers newBroker returns, in subtests of t.
//
// newBroker must return a new, empty broker, not yet started, each time it is
// called. Run calls it from parallel subtests, and calls it for the
// [broker.Broker.Seen] subtests inside a [testing/synctest] bubble, whose
// fake clock checks the dedupe windows: the broker must read time from
// package time. Run starts the brokers it gets (with node name "brokertest")
// and closes them when their subtest ends.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	s := suite{newBroker: newBroker}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Route", routeTests},
		{"Seen", seenTests},
		{"Log", logTests},
		{"Records", recordTests},
		{"Close", closeTests},
		{"Concurrent", concurrentTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, s)
				})
			}
		})
	}
}

// test is one subtest of Run.
type test struct {
	name string
	run  func(t *testing.T, s suite)
}

// suite hands out the brokers under test.
type suite struct {
	newBroker func(t *testing.T) broker.Broker
}

// open returns a new broker, not started, that is closed when t ends.
func (s suite) open(t *testing.T) broker.Broker {
	t.Helper()
	b := s.newBroker(t)
	if b == nil {
		t.Fatal("newBroker returned nil")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, broker.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// start returns a new broker, started with a new recorder as its Receiver,
// that is closed when t ends.
func (s suite) start(t *testing.T) (broker.Broker, *recorder) {
	t.Helper()
	b := s.open(t)
	r := newRecorder()
	if err := b.Start(t.Context(), "brokertest", r); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return b, r
}

// recorder is a [broker.Receiver] that keeps what it is given and reports
// reach sessions reached per message.
type recorder struct {
	mu    sync.Mutex
	msgs  []*broker.Message
	reach int
	hook  func(*broker.Message)
}

func newRecorder() *recorder { return &recorder{reach: 1} }

// Deliver records m, calls the hook, if any, and returns the reach.
func (r *recorder) Deliver(m *broker.Message) int {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	reach, hook := r.reach, r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(m)
	}
	return reach
}

// setReach sets what Deliver returns.
func (r *recorder) setReach(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reach = n
}

// setHook sets a function Deliver calls after recording a message.
func (r *recorder) setHook(f func(*broker.Message)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = f
}

// take returns the messages delivered since the last take.
func (r *recorder) take() []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	msgs := r.msgs
	r.msgs = nil
	return msgs
}

// within runs f and fails t if f does not return within defaultTimeout.
// f runs on another goroutine: it may call t.Error but not t.Fatal.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(defaultTimeout):
		t.Fatalf("%s has not returned after %v: deadlock?", what, defaultTimeout)
	}
}

// message returns a message to target with every field set.
func message(target broker.Address, payload string) *broker.Message {
	return &broker.Message{
		Target:        target,
		Payload:       []byte(payload),
		ContentType:   "text/plain",
		Headers:       map[string]string{"h": payload},
		CorrelationID: "corr-" + payload,
		SourceSession: "source-session",
		SourceClient:  "source-client",
		PublishedAt:   time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
	}
}

// equalMessage reports whether a and b carry the same message.
func equalMessage(a, b *broker.Message) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Target == b.Target &&
		bytes.Equal(a.Payload, b.Payload) &&
		a.ContentType == b.ContentType &&
		maps.Equal(a.Headers, b.Headers) &&
		a.CorrelationID == b.CorrelationID &&
		a.SourceSession == b.SourceSession &&
		a.SourceClient == b.SourceClient &&
		a.PublishedAt.Equal(b.PublishedAt)
}

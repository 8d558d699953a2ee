// Package brokertest checks that a [broker.Broker] keeps the promises
// documented in package broker, in the spirit of [testing/slogtest]. Every
// implementation runs the same suite from its own tests:
//
//	func TestBroker(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) broker.Broker {
//			return memory.New()
//		})
//	}
//
// [Run] checks one node. A broker that does network I/O passes
// [RealTime], since its idempotency windows cannot be checked on a
// [testing/synctest] clock. A shared broker (see [broker.Broker.Shared])
// also runs [RunShared], which checks the promises kept across nodes:
//
//	func TestShared(t *testing.T) {
//		brokertest.RunShared(t, func(t *testing.T) func(t *testing.T) broker.Broker {
//			prefix := newPrefix() // a name space of this cluster's own
//			return func(t *testing.T) broker.Broker { return newNode(t, prefix) }
//		}, brokertest.RealTime(2*time.Second))
//	}
package brokertest

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
)

// defaultTimeout bounds what must happen: a call that has not returned by
// then is taken for a deadlock, and something asynchronous that has not
// happened by then (a Bind reaching another node, say) is taken as never
// happening.
const defaultTimeout = 10 * time.Second

// quickTimeout bounds what must return "quickly": a call that needs no
// other node's answer, such as an Evict that nobody holds. It is well below
// any sensible request timeout of a broker doing network I/O, so that a
// broker waiting for a timeout to learn that nobody answered fails.
const quickTimeout = 2 * time.Second

// pollInterval is how often the suite checks something asynchronous.
const pollInterval = 5 * time.Millisecond

// baseWindow is the dedupe window the [broker.Broker.Seen] subtests are
// written for; [RealTime] scales it, and every other duration they use,
// to its unit.
const baseWindow = time.Minute

// Option changes how [Run] and [RunShared] check a broker.
type Option func(*config)

// config is what the options set.
type config struct {
	// realTime is set by RealTime.
	realTime bool
	// unit is what baseWindow becomes in real time.
	unit time.Duration
}

// RealTime makes [Run] check [broker.Broker.Seen] in real time, outside
// [testing/synctest] bubbles, for a broker that does network I/O: its
// connection goroutines are never durably blocked, so a bubble's fake clock
// would never advance. Every window and sleep of those subtests is scaled
// so that their base window, one minute, becomes unit, and the sleeps are
// real. The checks and their margins stay in proportion: a key checked as
// still remembered is checked at most halfway through its window, so the
// calls made since it was recorded have half a window to fit in; a key
// checked as forgotten is checked well after its window ended, which real
// sleeps, only ever longer than asked, do not shorten. With a unit of 2s,
// a broker whose calls take tens of milliseconds passes with room to spare
// (a step of the ManyKeys subtest, its tightest, is 200ms for three calls);
// the subtests then last up to 7s each, in parallel.
//
// [RunShared] always runs in real time; unit sets its window there too
// (default 2s).
//
// Without RealTime, Run checks Seen inside synctest bubbles, where the
// broker must read time from package time and start no goroutine that
// blocks on anything but channels, mutexes and timers of the bubble.
func RealTime(unit time.Duration) Option {
	return func(c *config) { c.realTime, c.unit = true, unit }
}

// newConfig applies opts, failing t on a bad one.
func newConfig(t *testing.T, opts []Option) config {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.realTime && c.unit <= 0 {
		t.Fatalf("brokertest: RealTime(%v): the unit must be positive", c.unit)
	}
	return c
}

// Run checks the brokers newBroker returns, in subtests of t.
//
// newBroker must return a new, empty broker, not yet started, each time it is
// called, sharing nothing with the others (for a shared broker: a fresh
// name space, so that it has no other node). Run calls it from parallel
// subtests, on the subtest's goroutine with the subtest's t. By default, Run
// calls it for the [broker.Broker.Seen] subtests inside a [testing/synctest]
// bubble, whose fake clock checks the dedupe windows: the broker must read
// time from package time. A broker that does network I/O cannot run in a
// bubble: pass [RealTime]. Run starts the brokers it gets (with node name
// "brokertest") and closes them when their subtest ends.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker, opts ...Option) {
	s := suite{newBroker: newBroker, config: newConfig(t, opts)}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Route", routeTests},
		{"Seen", seenTests},
		{"Log", logTests},
		{"Records", recordTests},
		{"Node", nodeTests},
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
	config
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

// recorder is a [broker.Receiver] that keeps what it is given, reports
// reach sessions reached per message and returns evictErr from Evict.
type recorder struct {
	mu        sync.Mutex
	msgs      []*broker.Message
	reach     int
	hook      func(*broker.Message)
	evictions []broker.Eviction
	evictErr  error
	evictHook func(broker.Eviction)
}

func newRecorder() *recorder { return &recorder{reach: 1} }

// Deliver records m, calls the hook, if any, and returns the reach.
func (r *recorder) Deliver(m *broker.Message) (int, error) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	reach, hook := r.reach, r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(m)
	}
	return reach, nil
}

// Evict records e, calls the evict hook, if any, and returns the error set
// by setEvictErr.
func (r *recorder) Evict(e broker.Eviction) error {
	r.mu.Lock()
	r.evictions = append(r.evictions, e)
	err, hook := r.evictErr, r.evictHook
	r.mu.Unlock()
	if hook != nil {
		hook(e)
	}
	return err
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

// setEvictErr sets what Evict returns.
func (r *recorder) setEvictErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evictErr = err
}

// setEvictHook sets a function Evict calls after recording an eviction.
func (r *recorder) setEvictHook(f func(broker.Eviction)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evictHook = f
}

// take returns the messages delivered since the last take.
func (r *recorder) take() []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	msgs := r.msgs
	r.msgs = nil
	return msgs
}

// messages returns the messages delivered since the last take, leaving
// them.
func (r *recorder) messages() []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// takeEvictions returns the evictions given since the last call.
func (r *recorder) takeEvictions() []broker.Eviction {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.evictions
	r.evictions = nil
	return e
}

// evictionCount returns how many evictions were given since the last
// takeEvictions.
func (r *recorder) evictionCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evictions)
}

// within runs f and fails t if f does not return within defaultTimeout.
// f runs on another goroutine: it may call t.Error but not t.Fatal.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	withinTime(t, what, defaultTimeout, "deadlock?", f)
}

// quickly runs f and fails t if f does not return within quickTimeout.
// f runs on another goroutine: it may call t.Error but not t.Fatal.
func quickly(t *testing.T, what string, f func()) {
	t.Helper()
	withinTime(t, what, quickTimeout, "it should not wait for anything", f)
}

func withinTime(t *testing.T, what string, d time.Duration, why string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s has not returned after %v: %s", what, d, why)
	}
}

// eventually polls cond until it reports true, and fails t if it has not
// by defaultTimeout. what says what is awaited.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(defaultTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s has not happened after %v", what, defaultTimeout)
		}
		time.Sleep(pollInterval)
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
		DedupeKey:     "scope\x00key-" + payload,
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
		a.PublishedAt.Equal(b.PublishedAt) &&
		a.DedupeKey == b.DedupeKey
}

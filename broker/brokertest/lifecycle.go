package brokertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
)

var closeTests = []test{
	{"AfterClose", testAfterClose},
	{"BeforeStart", testCloseBeforeStart},
	{"DuringCalls", testCloseDuringCalls},
}

var concurrentTests = []test{
	{"Routing", testConcurrentRouting},
	{"Seen", testConcurrentSeen},
	{"Logs", testConcurrentLogs},
	{"Records", testConcurrentRecords},
}

const (
	// goroutines and rounds size the concurrent subtests.
	goroutines = 8
	rounds     = 200
)

// calls returns one call of every method of b and of a Log obtained from b
// before the calls are made. Repeated calls are valid: appends take
// increasing seqs.
func calls(b broker.Broker) map[string]func(ctx context.Context) error {
	l := b.Log("s")
	var seq atomic.Uint64
	return map[string]func(ctx context.Context) error{
		"Start":  func(ctx context.Context) error { return b.Start(ctx, "again", newRecorder()) },
		"Bind":   func(ctx context.Context) error { return b.Bind(ctx, broker.Topic("t")) },
		"Unbind": func(ctx context.Context) error { return b.Unbind(ctx, broker.Topic("t")) },
		"Publish": func(ctx context.Context) error {
			_, err := b.Publish(ctx, message(broker.Topic("t"), "x"))
			return err
		},
		"Seen": func(ctx context.Context) error {
			_, err := b.Seen(ctx, "s", "k", time.Minute)
			return err
		},
		"Forget": func(ctx context.Context) error { return b.Forget(ctx, "s", "k") },
		"Recorded": func(ctx context.Context) error {
			_, err := b.Recorded(ctx, "s", "k")
			return err
		},
		"Evict": func(ctx context.Context) error {
			return b.Evict(ctx, broker.Eviction{Session: "s", Node: "other"})
		},
		"PutSession": func(ctx context.Context) error { return b.PutSession(ctx, record("s", "1")) },
		"GetSession": func(ctx context.Context) error {
			_, _, err := b.GetSession(ctx, "s")
			return err
		},
		"DeleteSession": func(ctx context.Context) error { return b.DeleteSession(ctx, "s") },
		"Log.Append": func(ctx context.Context) error {
			_, err := l.Append(ctx, entry(seq.Add(1)), 10)
			return err
		},
		"Log.Trim": func(ctx context.Context) error { return l.Trim(ctx, 1) },
		"Log.Read": func(ctx context.Context) error {
			return l.Read(ctx, 0, func(broker.Entry) bool { return true })
		},
		"Log.Delete": func(ctx context.Context) error { return l.Delete(ctx) },
		"new Log.Append": func(ctx context.Context) error {
			_, err := b.Log("new").Append(ctx, entry(seq.Add(1)), 10)
			return err
		},
	}
}

// testAfterClose checks that every method returns ErrClosed after Close.
func testAfterClose(t *testing.T, s suite) {
	b, r := s.start(t)
	ctx := t.Context()
	bind(t, b, broker.Topic("t"))
	put(t, b, record("s", "1"))
	l := b.Log("s")
	appendSeq(t, l, 1, 10, broker.Appended{Len: 1})
	ops := calls(b)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range ops {
		if err := call(ctx); !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close returned %v, want ErrClosed", name, err)
		}
	}
	if err := l.Read(ctx, 0, func(e broker.Entry) bool {
		t.Errorf("Read after Close saw seq %d", e.Seq)
		return true
	}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Read after Close returned %v, want ErrClosed", err)
	}
	if err := b.Close(); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("second Close returned %v, want ErrClosed", err)
	}
	delivered(t, r, 0)
}

func testCloseBeforeStart(t *testing.T, s suite) {
	b := s.open(t)
	if err := b.Close(); err != nil {
		t.Fatalf("Close before Start: %v", err)
	}
	if err := b.Start(t.Context(), "brokertest", newRecorder()); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Start after Close returned %v, want ErrClosed", err)
	}
}

// testCloseDuringCalls closes a broker while goroutines call every method:
// each call must succeed or return ErrClosed, and nothing may panic or race.
func testCloseDuringCalls(t *testing.T, s suite) {
	b, _ := s.start(t)
	ops := calls(b)
	delete(ops, "Start")
	var (
		wg      sync.WaitGroup
		started sync.WaitGroup
		closed  atomic.Bool
	)
	for name, call := range ops {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			for i := 0; !closed.Load() || i < rounds; i++ {
				err := call(t.Context())
				if err != nil && !errors.Is(err, broker.ErrClosed) {
					t.Errorf("%s during Close returned %v, want nil or ErrClosed", name, err)
					return
				}
			}
		})
	}
	started.Wait()
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed.Store(true)
	wg.Wait()
}

// testConcurrentRouting binds, publishes and unbinds from many goroutines;
// binds must balance out.
func testConcurrentRouting(t *testing.T, s suite) {
	b, _ := s.start(t)
	ctx := t.Context()
	shared, held := broker.Topic("shared"), broker.Topic("held")
	bind(t, b, held)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			own := broker.Session(fmt.Sprint("s", g))
			for range rounds {
				for _, addr := range []broker.Address{shared, own} {
					if err := b.Bind(ctx, addr); err != nil {
						t.Errorf("Bind: %v", err)
						return
					}
				}
				for _, addr := range []broker.Address{shared, own, held} {
					if n, err := b.Publish(ctx, message(addr, "x")); n != 1 || err != nil {
						t.Errorf("Publish to bound %v %q = %d, %v; want 1, nil", addr.Kind, addr.Name, n, err)
						return
					}
				}
				for _, addr := range []broker.Address{shared, own} {
					if err := b.Unbind(ctx, addr); err != nil {
						t.Errorf("Unbind: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	publish(t, b, message(shared, "after"), 0)
	publish(t, b, message(broker.Session("s0"), "after"), 0)
	publish(t, b, message(held, "after"), 1)
}

// testConcurrentSeen checks that of many concurrent calls for one key,
// exactly one records it.
func testConcurrentSeen(t *testing.T, s suite) {
	b, _ := s.start(t)
	ctx := t.Context()
	var (
		wg     sync.WaitGroup
		fresh  atomic.Int64
		window = time.Hour
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				dup, err := b.Seen(ctx, "shared", fmt.Sprint(i), window)
				if err != nil {
					t.Errorf("Seen: %v", err)
					return
				}
				if !dup {
					fresh.Add(1)
				}
				if dup, err := b.Seen(ctx, fmt.Sprint(g), fmt.Sprint(i), window); dup || err != nil {
					t.Errorf("Seen of a new key = %v, %v; want false, nil", dup, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := fresh.Load(); n != rounds {
		t.Errorf("%d concurrent Seen calls for each of %d keys reported %d new keys, want %d", goroutines, rounds, n, rounds)
	}
}

// testConcurrentLogs appends to, trims and reads logs from many goroutines.
func testConcurrentLogs(t *testing.T, s suite) {
	b, _ := s.start(t)
	ctx := t.Context()
	const capacity = 32
	var wg sync.WaitGroup
	for g := range goroutines {
		id := fmt.Sprint("s", g)
		var last atomic.Uint64
		wg.Go(func() {
			l := b.Log(id)
			for seq := uint64(1); seq <= rounds; seq++ {
				a, err := l.Append(ctx, entry(seq), capacity)
				if err != nil || a.Len < 1 || a.Len > capacity || a.Dropped < 0 {
					t.Errorf("Append(seq %d) = %+v, %v", seq, a, err)
					return
				}
				last.Store(seq)
			}
		})
		wg.Go(func() {
			l := b.Log(id)
			for range rounds {
				if err := l.Trim(ctx, last.Load()/2); err != nil {
					t.Errorf("Trim: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			l := b.Log(id)
			for range rounds {
				prev := uint64(0)
				err := l.Read(ctx, 0, func(e broker.Entry) bool {
					if e.Seq <= prev {
						t.Errorf("Read saw seq %d after %d", e.Seq, prev)
					}
					prev = e.Seq
					return true
				})
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for g := range goroutines {
		got := readSeqs(t, b.Log(fmt.Sprint("s", g)), 0)
		if len(got) == 0 || got[len(got)-1] != rounds {
			t.Errorf("log of s%d ends with seqs %v, want the last to be %d", g, got, rounds)
		}
	}
}

// testConcurrentRecords puts, gets and deletes records from many
// goroutines; a record read must be one that was put, never a mix.
func testConcurrentRecords(t *testing.T, s suite) {
	b, _ := s.start(t)
	ctx := t.Context()
	ids := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				id := ids[i%len(ids)]
				version := fmt.Sprint(g, "-", i)
				var err error
				switch i % 3 {
				case 0:
					err = b.PutSession(ctx, record(id, version))
				case 1:
					var got broker.SessionRecord
					var ok bool
					got, ok, err = b.GetSession(ctx, id)
					if ok && !equalRecord(got, record(id, strings.TrimPrefix(got.ClientID, "client-"))) {
						t.Errorf("GetSession(%q) returned a mixed record %+v", id, got)
					}
				case 2:
					if g%2 == 0 {
						err = b.DeleteSession(ctx, id)
					}
				}
				if err != nil {
					t.Errorf("records: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

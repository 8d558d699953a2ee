package nats_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// fullOnce is an orderReceiver that refuses the message numbered full
// (broker.ErrFull) the first time it comes.
type fullOnce struct {
	*orderReceiver
	full    int
	refused atomic.Bool
}

// refusedYet reports whether r refused its message yet.
func (r *fullOnce) refusedYet() bool { return r.refused.Load() }

func (r *fullOnce) Deliver(m *broker.Message) (int, error) {
	if string(m.Payload) == "s1/"+strconv.Itoa(r.full) && r.refused.CompareAndSwap(false, true) {
		return 0, broker.ErrFull
	}
	return r.orderReceiver.Deliver(m)
}

// count returns how many messages to target r got.
func (r *orderReceiver) count(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[target])
}

// waitUntil polls cond until it holds, failing t if the test's context
// ends first.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("never: %s", what)
		case <-time.After(time.Millisecond):
		}
	}
}

// publishAcross publishes s1/0 through p, waits until reached reports
// that it reached where it goes, calls change while s1/0 is still on its
// way as far as p's sender knows (its done held), publishes s1/1, and
// returns both outcomes.
func publishAcross(t *testing.T, p broker.Pipeline, reached func() bool, change func()) [2]outcome {
	t.Helper()
	ctx, s1 := t.Context(), broker.Session("s1")
	var got [2]outcome
	release := make(chan struct{})
	done := make(chan struct{}, 2)
	p.Publish(ctx, &broker.Message{Target: s1, Payload: []byte("s1/0")}, func(n int, err error) {
		<-release
		got[0] = outcome{n, err}
		done <- struct{}{}
	})
	waitUntil(t, "message 0 reached its target", reached)
	change()
	p.Publish(ctx, &broker.Message{Target: s1, Payload: []byte("s1/1")}, func(n int, err error) {
		got[1] = outcome{n, err}
		done <- struct{}{}
	})
	close(release)
	<-done
	<-done
	return got
}

// outcome is what a pipelined Publish's done reported.
type outcome struct {
	n   int
	err error
}

// pipelineNodes starts one broker per id on one NATS server, each with
// its own receiver, and puts session s1's record, held by the first.
func pipelineNodes(t *testing.T, ids []string, rs []broker.Receiver) []*natsbroker.Broker {
	t.Helper()
	url := natstest.Start(t).URL()
	o := natsbroker.Options{Prefix: newPrefix(), Replicas: 1, Timeout: 5 * time.Second, Logger: quiet()}
	var bs []*natsbroker.Broker
	for i, id := range ids {
		b, err := natsbroker.Connect(url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		must(t, b.Start(t.Context(), id, rs[i]))
		bs = append(bs, b)
	}
	must(t, bs[0].PutSession(t.Context(), broker.SessionRecord{ID: "s1", Node: ids[0], Expires: time.Now().Add(time.Hour)}))
	return bs
}

// publishAll publishes s1/<n> for each n through p without waiting, the
// first done held until every Publish returned (so each message leaves
// while the ones before it are on their way), and returns the outcomes.
func publishAll(ctx context.Context, p broker.Pipeline, ns ...int) []outcome {
	got := make([]outcome, len(ns))
	sent := make(chan struct{})
	done := make(chan struct{}, len(ns))
	for i, n := range ns {
		m := &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/" + strconv.Itoa(n))}
		p.Publish(ctx, m, func(n int, err error) {
			if i == 0 {
				<-sent
			}
			got[i] = outcome{n, err}
			done <- struct{}{}
		})
	}
	close(sent)
	for range ns {
		<-done
	}
	return got
}

// A pipelined message refused where it arrives (its session's log is
// full) takes the messages behind it, already on their way, down with it:
// none is delivered ahead of it, each reports a retryable error, and once
// the sender sends them again they arrive once each, in order. Whether the
// session is on the publisher's node or another.
func TestPipelineChainsBehindARefusal(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"same node", "other node"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			holder := &fullOnce{orderReceiver: &orderReceiver{got: map[string][]int{}}, full: 1}
			bs := pipelineNodes(t, []string{"H", "P"}, []broker.Receiver{holder, &orderReceiver{got: map[string][]int{}}})
			ctx := t.Context()
			must(t, bs[0].Bind(ctx, broker.Session("s1")))
			from := bs[1]
			if where == "same node" {
				from = bs[0]
			}
			p := from.Pipeline()

			got := publishAll(ctx, p, 0, 1, 2, 3)
			if got[0].n != 1 || got[0].err != nil {
				t.Fatalf("message 0: %d, %v; want delivered", got[0].n, got[0].err)
			}
			if !errors.Is(got[1].err, broker.ErrFull) {
				t.Fatalf("message 1: %d, %v; want ErrFull", got[1].n, got[1].err)
			}
			for i := 2; i < 4; i++ {
				if got[i].n != 0 || !errors.Is(got[i].err, broker.ErrUnavailable) {
					t.Fatalf("message %d behind the refused one: %d, %v; want not delivered, unavailable", i, got[i].n, got[i].err)
				}
			}
			if d := holder.got["s1"]; !slices.Equal(d, []int{0}) {
				t.Fatalf("delivered %v, want [0] only", d)
			}

			again := publishAll(ctx, p, 1, 2, 3)
			for i, o := range again {
				if o.n != 1 || o.err != nil {
					t.Fatalf("re-sent message %d: %d, %v; want delivered", i+1, o.n, o.err)
				}
			}
			if d := holder.got["s1"]; !slices.Equal(d, []int{0, 1, 2, 3}) {
				t.Fatalf("delivered %v, want [0 1 2 3]", d)
			}
		})
	}
}

// A pipelined message that finds its session on another node than the
// message before it (the session moved while that one was on its way) is
// not delivered there until the sender knows the earlier one's fate: it
// reports a retryable error, and arrives when sent again.
func TestPipelineChainsAcrossAMove(t *testing.T) {
	t.Parallel()
	a := &orderReceiver{got: map[string][]int{}}
	b := &orderReceiver{got: map[string][]int{}}
	bs := pipelineNodes(t, []string{"A", "B", "P"}, []broker.Receiver{a, b, &orderReceiver{got: map[string][]int{}}})
	ctx := t.Context()
	s1 := broker.Session("s1")
	must(t, bs[0].Bind(ctx, s1))
	p := bs[2].Pipeline()

	// Once A has message 0, the session moves from A to B.
	got := publishAcross(t, p, func() bool { return a.count("s1") > 0 }, func() {
		must(t, bs[0].Unbind(ctx, s1))
		must(t, bs[1].PutSession(ctx, broker.SessionRecord{ID: "s1", Node: "B", Expires: time.Now().Add(time.Hour)}))
		must(t, bs[1].Bind(ctx, s1))
	})
	if got[0].n != 1 || got[0].err != nil {
		t.Fatalf("message 0: %d, %v; want delivered (on A)", got[0].n, got[0].err)
	}
	if got[1].n != 0 || !errors.Is(got[1].err, broker.ErrUnavailable) {
		t.Fatalf("message 1, sent while 0 was on its way and found on B: %d, %v; want not delivered, unavailable", got[1].n, got[1].err)
	}
	if len(b.got["s1"]) != 0 {
		t.Fatalf("B delivered %v ahead of the sender knowing message 0's fate", b.got["s1"])
	}
	again := publishAll(ctx, p, 1)
	if again[0].n != 1 || again[0].err != nil {
		t.Fatalf("message 1 sent again: %d, %v; want delivered", again[0].n, again[0].err)
	}
	if !slices.Equal(a.got["s1"], []int{0}) || !slices.Equal(b.got["s1"], []int{1}) {
		t.Fatalf("A got %v, B got %v; want [0] and [1]", a.got["s1"], b.got["s1"])
	}
}

// A pipelined message behind one that did not arrive is not parked when
// it finds no node holding its target: parked, it would be delivered
// ahead of its predecessor's re-send (the chaos suite's kill of the
// receiver's node saw that: the node died with the predecessor, and the
// messages behind it found nobody). It reports a retryable error instead.
func TestPipelineDoesNotParkBehindAFailure(t *testing.T) {
	t.Parallel()
	holder := &fullOnce{orderReceiver: &orderReceiver{got: map[string][]int{}}, full: 0}
	bs := pipelineNodes(t, []string{"H", "P"}, []broker.Receiver{holder, &orderReceiver{got: map[string][]int{}}})
	ctx := t.Context()
	s1 := broker.Session("s1")
	must(t, bs[0].Bind(ctx, s1))
	p := bs[1].Pipeline()

	// Once H refused message 0, H lets the session go: message 1 finds
	// no holder.
	got := publishAcross(t, p, holder.refusedYet, func() { must(t, bs[0].Unbind(ctx, s1)) })
	if !errors.Is(got[0].err, broker.ErrFull) {
		t.Fatalf("message 0: %d, %v; want ErrFull", got[0].n, got[0].err)
	}
	if got[1].n != 0 || !errors.Is(got[1].err, broker.ErrUnavailable) {
		t.Fatalf("message 1, behind the refused one, found no holder: %d, %v; want not parked, unavailable", got[1].n, got[1].err)
	}
	// Nothing was parked: the next bind delivers nothing.
	must(t, bs[0].Bind(ctx, s1))
	again := publishAll(ctx, p, 0, 1)
	for i, o := range again {
		if o.n != 1 || o.err != nil {
			t.Fatalf("re-sent message %d: %d, %v; want delivered", i, o.n, o.err)
		}
	}
	if d := holder.got["s1"]; !slices.Equal(d, []int{0, 1}) {
		t.Fatalf("delivered %v, want [0 1]: message 1 once, after 0", d)
	}
}

// quiescer is an orderReceiver that is a broker.Quiescer: its Quiesce
// says it began (entered) and returns once release closes.
type quiescer struct {
	*orderReceiver
	entered, release chan struct{}
	quiesced         atomic.Bool
}

func (r *quiescer) Quiesce(ctx context.Context, id string) {
	close(r.entered)
	select {
	case <-r.release:
	case <-ctx.Done():
		return
	}
	r.quiesced.Store(id == "s1")
}

// An eviction of a session is answered once the receiver's Quiesce for it
// returned (a server's pipelined messages ended, their keys recorded), and
// the holder delivers to its other addresses meanwhile.
func TestEvictionWaitsForQuiesce(t *testing.T) {
	t.Parallel()
	q := &quiescer{orderReceiver: &orderReceiver{got: map[string][]int{}}, entered: make(chan struct{}), release: make(chan struct{})}
	bs := pipelineNodes(t, []string{"H", "E"}, []broker.Receiver{q, &orderReceiver{got: map[string][]int{}}})
	ctx := t.Context()
	must(t, bs[0].Bind(ctx, broker.Session("s1")))
	must(t, bs[0].Bind(ctx, broker.Session("s2")))
	evicted := make(chan error, 1)
	go func() { evicted <- bs[1].Evict(ctx, broker.Eviction{Session: "s1", Node: "E"}) }()
	<-q.entered
	// Quiesce waits: s2, whatever its dispatch shard, still gets messages.
	for i := range 3 {
		if n, err := bs[1].Publish(ctx, &broker.Message{Target: broker.Session("s2"), Payload: []byte("s2/" + strconv.Itoa(i))}); n != 1 || err != nil {
			t.Fatalf("publish to s2 while s1's eviction quiesces: %d, %v", n, err)
		}
	}
	close(q.release)
	if err := <-evicted; err != nil {
		t.Fatalf("Evict: %v", err)
	}
	if !q.quiesced.Load() {
		t.Fatal("the eviction was answered before Quiesce returned")
	}
}

// A pipelined message whose sender left (its context ended) is not parked
// when it finds no holder: the sender's client re-sends it where the
// sender went, and a parked copy would arrive too.
func TestPipelineDoesNotParkForASenderThatLeft(t *testing.T) {
	t.Parallel()
	holder := &orderReceiver{got: map[string][]int{}}
	bs := pipelineNodes(t, []string{"H", "P"}, []broker.Receiver{holder, &orderReceiver{got: map[string][]int{}}})
	gone, leave := context.WithCancel(t.Context())
	leave()
	done := make(chan outcome, 1)
	bs[1].Pipeline().Publish(gone, &broker.Message{Target: broker.Session("s1"), Payload: []byte("s1/0")}, func(n int, err error) { done <- outcome{n, err} })
	if o := <-done; o.n != 0 || !errors.Is(o.err, broker.ErrUnavailable) {
		t.Fatalf("a message of a sender that left, to a session no node holds: %d, %v; want not parked, unavailable", o.n, o.err)
	}
	// Nothing was parked: the next bind delivers nothing, and a message
	// sent now arrives alone.
	ctx := t.Context()
	must(t, bs[0].Bind(ctx, broker.Session("s1")))
	if got := publishAll(ctx, bs[1].Pipeline(), 1); got[0].n != 1 || got[0].err != nil {
		t.Fatalf("message 1: %d, %v; want delivered", got[0].n, got[0].err)
	}
	if d := holder.got["s1"]; !slices.Equal(d, []int{1}) {
		t.Fatalf("delivered %v, want [1]", d)
	}
}

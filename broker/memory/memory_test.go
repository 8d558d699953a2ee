package memory_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/brokertest"
	"github.com/tetherhq/tether/broker/memory"
)

func TestBroker(t *testing.T) {
	brokertest.Run(t, func(*testing.T) broker.Broker { return memory.New() })
}

// TestShared checks that the shared suite skips, rather than fails, a
// broker that is not shared.
func TestShared(t *testing.T) {
	brokertest.RunShared(t, func(*testing.T) func(*testing.T) broker.Broker {
		return func(*testing.T) broker.Broker { return memory.New() }
	})
}

// count is a Receiver that reports every message as reaching one session.
type count struct{}

func (count) Deliver(*broker.Message) (int, error) { return 1, nil }

func (count) Evict(broker.Eviction) error { return nil }

func TestStart(t *testing.T) {
	b := memory.New()
	defer b.Close()
	if err := b.Start(t.Context(), "node", nil); err == nil {
		t.Error("Start with a nil Receiver succeeded")
	}
	if err := b.Start(t.Context(), "node", count{}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := b.Start(t.Context(), "node", count{}); err == nil {
		t.Error("second Start succeeded")
	}
}

// TestHotPathAllocs checks that Publish and a steady-state Append allocate
// nothing.
func TestHotPathAllocs(t *testing.T) {
	ctx := t.Context()
	b := memory.New()
	defer b.Close()
	if err := b.Start(ctx, "node", count{}); err != nil {
		t.Fatal(err)
	}
	m := &broker.Message{Target: broker.Session("s"), Payload: []byte("x")}
	if err := b.Bind(ctx, m.Target); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Publish allocates %v times per call, want 0", n)
	}

	l := b.Log("s")
	seq := uint64(0)
	appendOne := func() {
		seq++
		if _, err := l.Append(ctx, broker.Entry{Seq: seq, Message: m}, 16); err != nil {
			t.Fatal(err)
		}
	}
	for range 16 {
		appendOne()
	}
	if n := testing.AllocsPerRun(100, appendOne); n != 0 {
		t.Errorf("Append at capacity allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		appendOne()
		if err := l.Trim(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Append and Trim allocate %v times per pair, want 0", n)
	}
}

func BenchmarkPublish(b *testing.B) {
	ctx := b.Context()
	br := memory.New()
	defer br.Close()
	if err := br.Start(ctx, "node", count{}); err != nil {
		b.Fatal(err)
	}
	m := &broker.Message{Target: broker.Topic("t"), Payload: []byte("x")}
	if err := br.Bind(ctx, m.Target); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Publish(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkLogAppend(b *testing.B) {
	ctx := b.Context()
	br := memory.New()
	defer br.Close()
	l := br.Log("s")
	m := &broker.Message{Target: broker.Session("s"), Payload: []byte("x")}
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		if _, err := l.Append(ctx, broker.Entry{Seq: seq, Message: m}, 1024); err != nil {
			b.Fatal(err)
		}
		if seq%64 == 0 {
			if err := l.Trim(ctx, seq); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkSeen(b *testing.B) {
	ctx := b.Context()
	br := memory.New()
	defer br.Close()
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := br.Seen(ctx, "client", keys[i%len(keys)], time.Millisecond); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

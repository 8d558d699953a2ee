package nats_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/brokertest"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// prefixes gives each broker or cluster under test a namespace of its own
// on the shared NATS servers.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("bt%d", prefixes.Add(1)) }

// TestBroker runs the broker conformance suite on one NATS server.
func TestBroker(t *testing.T) {
	url := natstest.Start(t).URL()
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b, err := natsbroker.Connect(url, natsbroker.Options{Prefix: newPrefix(), MemoryStorage: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, brokertest.RealTime(2*time.Second))
}

// TestShared runs the shared-broker suite: on one NATS server, and on a
// cluster of three with nodes spread over its servers.
func TestShared(t *testing.T) {
	t.Run("OneNATS", func(t *testing.T) {
		url := natstest.Start(t).URL()
		brokertest.RunShared(t, func(t *testing.T) func(t *testing.T) broker.Broker {
			prefix := newPrefix()
			return func(t *testing.T) broker.Broker {
				b, err := natsbroker.Connect(url, natsbroker.Options{Prefix: prefix, MemoryStorage: true, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		})
	})
	t.Run("NATSCluster", func(t *testing.T) {
		servers := natstest.StartCluster(t, 3)
		brokertest.RunShared(t, func(t *testing.T) func(t *testing.T) broker.Broker {
			prefix := newPrefix()
			var next atomic.Int64
			return func(t *testing.T) broker.Broker {
				// Each node on its own NATS server, as in production.
				url := servers[int(next.Add(1)-1)%len(servers)].URL()
				b, err := natsbroker.Connect(url, natsbroker.Options{Prefix: prefix, Replicas: 3, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		})
	})
}

// TestLongLogReadElsewhere reads, on another node, a log longer than the
// few entries read one request each: the ordered-consumer path, in order
// and complete.
func TestLongLogReadElsewhere(t *testing.T) {
	url := natstest.Start(t).URL()
	prefix := newPrefix()
	open := func(node string) broker.Broker {
		b, err := natsbroker.Connect(url, natsbroker.Options{Prefix: prefix, MemoryStorage: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Start(t.Context(), node, nopReceiver{}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := open("a"), open("b")
	const n = 3000
	la := a.Log("s")
	for i := range n {
		if _, err := la.Append(t.Context(), broker.Entry{Seq: uint64(i + 1), Message: &broker.Message{Target: broker.Session("s"), Payload: []byte(strconv.Itoa(i + 1))}}, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := la.Trim(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	// Releasing the session flushes a's appends and trims.
	if err := a.Bind(t.Context(), broker.Session("s")); err != nil {
		t.Fatal(err)
	}
	if err := a.Unbind(t.Context(), broker.Session("s")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	next := uint64(101)
	if err := b.Log("s").Read(t.Context(), 0, func(e broker.Entry) bool {
		if e.Seq != next || string(e.Message.Payload) != strconv.FormatUint(next, 10) {
			t.Fatalf("entry %d (%q) where %d was due", e.Seq, e.Message.Payload, next)
		}
		next++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if next != n+1 {
		t.Fatalf("read up to %d, want %d", next-1, n)
	}
	t.Logf("read %d entries on another node in %v", n-100, time.Since(start))
}

type nopReceiver struct{}

func (nopReceiver) Deliver(*broker.Message) (int, error) { return 0, nil }
func (nopReceiver) Evict(broker.Eviction) error          { return nil }

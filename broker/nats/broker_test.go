package nats_test

import (
	"fmt"
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

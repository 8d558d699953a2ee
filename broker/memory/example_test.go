package memory_test

import (
	"context"
	"fmt"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
)

// printer is a Receiver standing in for a server's hub: it prints each
// message and reports it as reaching one session.
type printer struct{}

func (printer) Deliver(m *broker.Message) (int, error) {
	fmt.Printf("deliver to %s %s: %s\n", m.Target.Kind, m.Target.Name, m.Payload)
	return 1, nil
}

// Evict is never called: other nodes do not share a memory broker.
func (printer) Evict(broker.Eviction) error { return nil }

func Example() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	if err := b.Start(ctx, "node-1", printer{}); err != nil {
		fmt.Println(err)
		return
	}

	// A session subscribes to a topic: the node binds it.
	if err := b.Bind(ctx, broker.Topic("news")); err != nil {
		fmt.Println(err)
		return
	}
	for _, topic := range []string{"news", "sports"} {
		n, err := b.Publish(ctx, &broker.Message{Target: broker.Topic(topic), Payload: []byte("hello")})
		fmt.Println("reached", n, err)
	}

	// The session's outbound log keeps at most two unacknowledged messages.
	log := b.Log("session-1")
	for seq := uint64(1); seq <= 3; seq++ {
		a, _ := log.Append(ctx, broker.Entry{Seq: seq, Message: &broker.Message{}}, 2)
		fmt.Printf("append %d: len %d, dropped %d\n", seq, a.Len, a.Dropped)
	}
	_ = log.Trim(ctx, 2) // the client acked up to seq 2
	_ = log.Read(ctx, 0, func(e broker.Entry) bool {
		fmt.Println("unacked", e.Seq)
		return true
	})

	// Output:
	// deliver to topic news: hello
	// reached 1 <nil>
	// reached 0 <nil>
	// append 1: len 1, dropped 0
	// append 2: len 2, dropped 0
	// append 3: len 2, dropped 1
	// unacked 3
}

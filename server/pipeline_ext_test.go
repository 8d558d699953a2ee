package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// unsurePipes is the memory broker with a pipeline (broker.Pipeliner)
// that delivers each message at once and reports its fate in order, on
// another goroutine: the fate of the message whose payload is unsure,
// the first time, as a failure although it was delivered (its holder
// answered too late, say).
type unsurePipes struct {
	*memory.Broker
	unsure string
	once   sync.Once
}

func (b *unsurePipes) Pipeline() broker.Pipeline { return &unsurePipe{b: b} }

type unsurePipe struct {
	b    *unsurePipes
	prev chan struct{} // closed once the previous done ran
}

func (p *unsurePipe) Publish(ctx context.Context, m *broker.Message, done func(int, error)) {
	n, err := p.b.Publish(ctx, m)
	if string(m.Payload) == p.b.unsure {
		p.b.once.Do(func() { err = errors.Join(broker.ErrUnavailable, errors.New("the holder did not answer in time")) })
	}
	prev, next := p.prev, make(chan struct{})
	p.prev = next
	go func() {
		if prev != nil {
			<-prev
		}
		done(n, err)
		close(next)
	}()
}

func direct(seq uint64, to, payload string) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: seq, Target: &tetherv1.ClientMessage_ClientId{ClientId: to}, Payload: []byte(payload)}}}
}

// A pipelined message whose fate was unknown (reported failed, but
// delivered) is refused, and the messages behind it, delivered all the
// same, are not delivered again when the client re-sends them: only the
// one whose fate was unknown may arrive twice, as without a pipeline.
func TestPipelineDoesNotRepeatWhatWasDeliveredBehindARefusal(t *testing.T) {
	t.Parallel()
	b := &unsurePipes{Broker: memory.New(), unsure: "m2"}
	n := startNode(t, server.WithBroker(b), server.WithPipelining(true))
	to := n.dial(t, "")
	to.open(&tetherv1.Hello{ClientId: "dev", ReceiveWindow: &tetherv1.ReceiveWindow{Messages: 64, Bytes: 1 << 20}})
	from := n.dial(t, "")
	from.open(&tetherv1.Hello{ClientId: "sender"})

	for i := 1; i <= 4; i++ {
		from.send(direct(uint64(i), "dev", fmt.Sprintf("m%d", i)))
	}
	e := from.errorFrame()
	if e.GetSeq() != 2 || codes.Code(e.GetCode()) != codes.Unavailable {
		t.Fatalf("error frame %v; want message 2 refused, UNAVAILABLE", e)
	}
	to.expectMessages(1, "m1", "m2", "m3", "m4")

	// The client re-sends from 2 on: 2 goes again (its fate was unknown),
	// 3 and 4 were delivered and are dropped as re-sends.
	for i := 2; i <= 4; i++ {
		from.send(direct(uint64(i), "dev", fmt.Sprintf("m%d", i)))
	}
	from.ackedTo(4)
	from.send(direct(5, "dev", "m5"))
	from.ackedTo(5)
	to.expectMessages(5, "m2", "m5")
}

package nats_test

import (
	"strconv"
	"testing"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/internal/natstest"
)

// BenchmarkAppendFull appends to a log that is full (every append drops
// the oldest entry), of 1k and 16k entries: the cost of an append must not
// grow with the log.
//
//	go test -run '^$' -bench AppendFull ./broker/nats/
func BenchmarkAppendFull(b *testing.B) {
	url := natstest.Start(b).URL()
	for _, capacity := range []int{1024, 16384} {
		b.Run(strconv.Itoa(capacity), func(b *testing.B) {
			nb, err := natsbroker.Connect(url, natsbroker.Options{Prefix: newPrefix(), MemoryStorage: true, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = nb.Close() })
			if err := nb.Start(b.Context(), "a", nopReceiver{}); err != nil {
				b.Fatal(err)
			}
			log := nb.Log("s")
			m := &broker.Message{Target: broker.Session("s"), Payload: make([]byte, 64)}
			seq := uint64(0)
			for range capacity {
				seq++
				if _, err := log.Append(b.Context(), broker.Entry{Seq: seq, Message: m}, capacity); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				seq++
				if _, err := log.Append(b.Context(), broker.Entry{Seq: seq, Message: m}, capacity); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := log.(broker.Syncer).Sync(b.Context()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

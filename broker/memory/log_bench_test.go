package memory

import (
	"context"
	"strconv"
	"testing"

	"github.com/tetherhq/tether/broker"
)

// BenchmarkLog measures a session's outbound log as the server uses it:
// one Append per message and a Trim per client ack (the SDK acks every 32
// messages), with the server's default capacity; and a resume's Read of
// 1,000 unacknowledged entries. ns/op is per message for append-trim and
// per Read for read.
//
//	go test -run '^$' -bench Log -benchmem ./broker/memory/
func BenchmarkLog(b *testing.B) {
	const capacity = 4096 // server.DefaultMaxOutboundQueue
	ctx := context.Background()
	m := &broker.Message{Target: broker.Topic("t"), Payload: make([]byte, 64)}
	for _, every := range []int{1, 32} {
		b.Run("append-trim-"+strconv.Itoa(every), func(b *testing.B) {
			l := New().Log("s")
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				if _, err := l.Append(ctx, broker.Entry{Seq: seq, Message: m}, capacity); err != nil {
					b.Fatal(err)
				}
				if seq%uint64(every) == 0 {
					if err := l.Trim(ctx, seq); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
	b.Run("read-1000", func(b *testing.B) {
		l := New().Log("s")
		for seq := uint64(1); seq <= 1000; seq++ {
			if _, err := l.Append(ctx, broker.Entry{Seq: seq, Message: m}, capacity); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			var replay []broker.Entry
			if err := l.Read(ctx, 1, func(e broker.Entry) bool {
				replay = append(replay, e)
				return true
			}); err != nil || len(replay) != 1000 {
				b.Fatalf("Read: %d entries, %v", len(replay), err)
			}
		}
	})
}

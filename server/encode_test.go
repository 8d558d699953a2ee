package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// The frames encoded by hand decode to exactly the proto frames the proto
// path sends, one message or a batch, with Encoded set or not.
func TestEncodedFramesMatchTheProtoFrames(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 13, 0, 0, 123456789, time.UTC)
	msgs := []*broker.Message{
		{Target: broker.Topic("news"), Payload: []byte("hello"), PublishedAt: at},
		{Target: broker.Address{Kind: broker.KindClient, Name: "c1"}, Payload: []byte(strings.Repeat("x", 300)),
			ContentType: "text/plain", Headers: map[string]string{"a": "1", "b": "2"}, CorrelationID: "corr",
			SourceSession: "s1", SourceClient: "c0", PublishedAt: at},
		{Target: broker.Topic("empty")},
		{Target: broker.Address{Kind: broker.KindSession, Name: "s9"}, Payload: make([]byte, 70000), PublishedAt: at},
	}
	seqs := []uint64{1, 127, 128, 1 << 40}
	for _, encoded := range []bool{false, true} {
		for n := 1; n <= len(msgs); n++ {
			t.Run(fmt.Sprintf("encoded=%v/messages=%d", encoded, n), func(t *testing.T) {
				t.Parallel()
				var entries []broker.Entry
				for i, m := range msgs[:n] {
					cp := *m
					if encoded {
						cp.Encoded = encodeBody(&cp)
					}
					entries = append(entries, broker.Entry{Seq: seqs[i], Message: &cp})
				}
				var enc encoder
				data, ok := enc.encodeMessages(entries)
				if !ok {
					t.Fatal("encodeMessages failed")
				}
				defer data.Free()
				var got tetherv1.ConnectResponse
				if err := proto.Unmarshal(data.ReadOnlyData(), &got); err != nil {
					t.Fatalf("the encoded frame does not decode: %v", err)
				}
				st := &stream{}
				want := st.messageFrame(entries)
				if !proto.Equal(&got, want) {
					t.Fatalf("encoded frame decodes to\n%v\nwant\n%v", &got, want)
				}
			})
		}
	}
}

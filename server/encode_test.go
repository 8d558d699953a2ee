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

// A batch stays within batchBytes whatever its messages carry besides the
// payload (headers here), so within Limits.max_frame_bytes.
func TestBatchesStayWithinTheirBound(t *testing.T) {
	t.Parallel()
	st := &stream{maxBatch: MaxBatch, win: window{messages: 1000, bytes: 1 << 30}}
	headers := map[string]string{"big": strings.Repeat("h", 10<<10)}
	for i := range 20 {
		st.data.push(broker.Entry{Seq: uint64(i + 1), Message: &broker.Message{Target: broker.Topic("t"), Payload: []byte("p"), Headers: headers}})
	}
	frames, total := 0, 0
	for {
		o, _, _ := st.next(false)
		if len(o.msgs) == 0 {
			break
		}
		frames++
		total += len(o.msgs)
		if n := proto.Size(st.messageFrame(o.msgs)); n > batchBytes {
			t.Fatalf("a frame of %d messages is %d bytes, above batchBytes (%d)", len(o.msgs), n, batchBytes)
		}
	}
	if total != 20 || frames >= 20 {
		t.Fatalf("20 messages went in %d frames (%d messages); want all, several to a batch", frames, total)
	}
}

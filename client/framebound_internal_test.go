package client

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// frameBound lets checkLimits skip building the frame only if it never
// undercounts: it bounds the frame proto.Size counts, with the largest
// seq, for messages from empty to ones whose lengths need long varints.
func TestFrameBoundCoversTheFrame(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 20000)
	for name, m := range map[string]Message{
		"empty":        {},
		"small relay":  {ClientID: "b", Payload: make([]byte, 64), IdempotencyKey: "k1", generatedKey: true},
		"every field":  {Topic: "t", ContentType: "text/plain", CorrelationID: "c", IdempotencyKey: "k", Headers: map[string]string{"a": "1", "": ""}, Payload: []byte("p")},
		"long fields":  {SessionID: long, ContentType: long, CorrelationID: long, IdempotencyKey: long, Payload: []byte(long + long)},
		"many headers": {Topic: "t", Headers: map[string]string{"k1": long, long: "v", "k3": "", "k4": "v4"}},
	} {
		pm := &tetherv1.ClientMessage{Seq: ^uint64(0), AckNow: true}
		fillProto(pm, m, &target{})
		pm.GeneratedKey = true
		want := proto.Size(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: pm}})
		if got := frameBound(m) + maxSeqBytes; got < want {
			t.Errorf("%s: frameBound+maxSeqBytes = %d, below the frame's %d bytes", name, got, want)
		}
	}
}

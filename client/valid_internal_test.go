package client

import (
	"strings"
	"testing"
)

// A message the wire cannot carry is refused by Send, not written: it
// would break the stream and be re-sent after every resume.
func TestValidOutgoingRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	bad := string([]byte{0xc3}) // a cut two-byte sequence
	for name, m := range map[string]Message{
		"header value":    {Topic: "t", Headers: map[string]string{"k": bad}},
		"header key":      {Topic: "t", Headers: map[string]string{bad: "v"}},
		"content type":    {Topic: "t", ContentType: bad},
		"correlation id":  {CorrelationID: bad},
		"client id":       {ClientID: bad},
		"session id":      {SessionID: bad},
		"idempotency key": {Topic: "t", IdempotencyKey: bad},
	} {
		err := validOutgoing(m)
		if err == nil || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("%s: validOutgoing = %v, want a UTF-8 error", name, err)
		}
	}
	if err := validOutgoing(Message{Topic: "t", Headers: map[string]string{"k": "é"}, Payload: []byte{0xff}}); err != nil {
		t.Errorf("valid message refused: %v", err)
	}
}

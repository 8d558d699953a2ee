package nats

import (
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
)

// FuzzDecodeMessage feeds decodeMessage arbitrary bytes, as a node reads
// them off a NATS subject anyone with access may publish to: it must never
// panic, and whatever it accepts must encode back to a message that
// decodes the same.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(nil, &broker.Message{Target: broker.Topic("t"), Payload: []byte("p")}, 0))
	f.Add(encodeMessage(nil, &broker.Message{
		Target: broker.Client("c"), Payload: []byte{0, 1, 2}, ContentType: "ct",
		Headers: map[string]string{"k": "v", "": ""}, CorrelationID: "corr",
		SourceSession: "s", SourceClient: "sc", PublishedAt: time.Unix(1, 2), DedupeKey: "c/p/k\x00key",
	}, 42))
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x09})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, seq, err := decodeMessage(data)
		if err != nil {
			return
		}
		again, seq2, err := decodeMessage(encodeMessage(nil, m, seq))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if seq2 != seq || !sameMessage(m, again) {
			t.Fatalf("round trip changed the message: %+v (seq %d) → %+v (seq %d)", m, seq, again, seq2)
		}
	})
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range []*broker.Message{
		{Target: broker.Session("s1")},
		{Target: broker.Topic("a.b.*>"), Payload: []byte("x"), Headers: map[string]string{"a": "1", "b": "2"}},
		{Target: broker.Client("ü"), PublishedAt: time.Unix(-5, 7).UTC(), SourceSession: "src", CorrelationID: "c"},
	} {
		got, seq, err := decodeMessage(encodeMessage(nil, m, 9))
		if err != nil || seq != 9 || !sameMessage(m, got) {
			t.Errorf("round trip of %+v = %+v, %d, %v", m, got, seq, err)
		}
	}
	if _, _, err := decodeMessage([]byte{0x08, 0x07}); err == nil {
		t.Error("a message with target kind 7 decoded")
	}
}

func TestTokens(t *testing.T) {
	s := newSubjects("tether")
	for _, a := range []broker.Address{broker.Topic("a.b c*>"), broker.Session("0123"), broker.Client("-x")} {
		subj, err := s.route(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.parseRoute(subj)
		if err != nil || got != a {
			t.Errorf("parseRoute(route(%v)) = %v, %v", a, got, err)
		}
	}
	if _, err := s.route(broker.Session("")); err == nil {
		t.Error("an empty session id made a subject")
	}
	for _, bad := range []string{"tether.r.x.YQ", "tether.r.s", "other.r.s.YQ", "tether.r.s.!!"} {
		if a, err := s.parseRoute(bad); err == nil {
			t.Errorf("parseRoute(%q) = %v, want an error", bad, a)
		}
	}
}

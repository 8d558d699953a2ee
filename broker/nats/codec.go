package nats

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tetherhq/tether/broker"
)

// The fields of an encoded message: a protobuf-compatible layout written
// with protowire, so that a message costs one allocation to encode and no
// reflection.
const (
	fKind          = 1
	fName          = 2
	fPayload       = 3
	fContentType   = 4
	fHeader        = 5 // repeated {1: key, 2: value}
	fCorrelationID = 6
	fSourceSession = 7
	fSourceClient  = 8
	fPublishedAt   = 9 // unix nanoseconds
	fSeq           = 10
	fDedupeKey     = 11
)

// encodeMessage appends the encoding of m, and of seq when it is not zero,
// to b.
func encodeMessage(b []byte, m *broker.Message, seq uint64) []byte {
	b = protowire.AppendTag(b, fKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Target.Kind))
	b = appendString(b, fName, m.Target.Name)
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, fPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	b = appendString(b, fContentType, m.ContentType)
	for k, v := range m.Headers {
		var kv []byte
		kv = appendString(kv, 1, k)
		kv = appendString(kv, 2, v)
		b = protowire.AppendTag(b, fHeader, protowire.BytesType)
		b = protowire.AppendBytes(b, kv)
	}
	b = appendString(b, fCorrelationID, m.CorrelationID)
	b = appendString(b, fSourceSession, m.SourceSession)
	b = appendString(b, fSourceClient, m.SourceClient)
	if !m.PublishedAt.IsZero() {
		b = protowire.AppendTag(b, fPublishedAt, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(m.PublishedAt.UnixNano()))
	}
	if seq != 0 {
		b = protowire.AppendTag(b, fSeq, protowire.VarintType)
		b = protowire.AppendVarint(b, seq)
	}
	return appendString(b, fDedupeKey, m.DedupeKey)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

var errCorrupt = errors.New("tether/broker/nats: corrupt message encoding")

// decodeMessage decodes what encodeMessage wrote. Unknown fields are
// skipped, so a newer node's messages still decode.
func decodeMessage(b []byte) (*broker.Message, uint64, error) {
	m := &broker.Message{}
	var seq uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, 0, errCorrupt
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && (num == fKind || num == fPublishedAt || num == fSeq):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, 0, errCorrupt
			}
			b = b[n:]
			switch num {
			case fKind:
				m.Target.Kind = broker.Kind(v)
			case fPublishedAt:
				m.PublishedAt = time.Unix(0, protowire.DecodeZigZag(v))
			case fSeq:
				seq = v
			}
		case typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, 0, errCorrupt
			}
			b = b[n:]
			switch num {
			case fName:
				m.Target.Name = string(v)
			case fPayload:
				m.Payload = append([]byte(nil), v...)
			case fContentType:
				m.ContentType = string(v)
			case fHeader:
				k, val, err := decodeHeader(v)
				if err != nil {
					return nil, 0, err
				}
				if m.Headers == nil {
					m.Headers = make(map[string]string)
				}
				m.Headers[k] = val
			case fCorrelationID:
				m.CorrelationID = string(v)
			case fSourceSession:
				m.SourceSession = string(v)
			case fSourceClient:
				m.SourceClient = string(v)
			case fDedupeKey:
				m.DedupeKey = string(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, 0, errCorrupt
			}
			b = b[n:]
		}
	}
	switch m.Target.Kind {
	case broker.KindTopic, broker.KindSession, broker.KindClient:
	default:
		return nil, 0, fmt.Errorf("%w: target kind %d", errCorrupt, m.Target.Kind)
	}
	return m, seq, nil
}

func decodeHeader(b []byte) (k, v string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return "", "", errCorrupt
		}
		b = b[n:]
		s, n := protowire.ConsumeString(b)
		if n < 0 {
			return "", "", errCorrupt
		}
		b = b[n:]
		switch num {
		case 1:
			k = s
		case 2:
			v = s
		}
	}
	return k, v, nil
}

// token encodes a name as one subject token: unpadded base64url, whose
// alphabet holds no '.', '*', '>' or space.
func token(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

// untoken decodes a token.
func untoken(t string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err
}

package client

import (
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// decodeFrames are server frames of every shape the hand decoder takes or
// leaves to proto, encoded: every ServerMessage field, batches, repeated
// and unknown fields, and frames that are not messages.
func decodeFrames(t testing.TB) [][]byte {
	full := &tetherv1.ServerMessage{Seq: 1 << 40, Topic: "news", Payload: []byte("hello"), ContentType: "text/plain",
		Headers: map[string]string{"a": "1", "": ""}, CorrelationId: "corr",
		Source: &tetherv1.Source{SessionId: "s1", ClientId: "c1"}, PublishedAt: timestamppb.New(timestamppb.Now().AsTime())}
	bare := &tetherv1.ServerMessage{Seq: 7}
	msg := func(m *tetherv1.ServerMessage) *tetherv1.ConnectResponse {
		return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: m}}
	}
	batch := func(ms ...*tetherv1.ServerMessage) *tetherv1.ConnectResponse {
		return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Batch{Batch: &tetherv1.ServerMessageBatch{Messages: ms}}}
	}
	var out [][]byte
	for _, f := range []*tetherv1.ConnectResponse{
		msg(full), msg(bare), msg(&tetherv1.ServerMessage{}),
		batch(full, bare, full), batch(), batch(&tetherv1.ServerMessage{Seq: 1, Topic: "t"}, &tetherv1.ServerMessage{Seq: 2, Topic: "t"}),
		{Frame: &tetherv1.ConnectResponse_Ack{Ack: &tetherv1.Ack{Seq: 3}}},
		{Frame: &tetherv1.ConnectResponse_Gap{Gap: &tetherv1.Gap{Lost: &tetherv1.SeqRange{First: 1, Last: 2}}}},
	} {
		b, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	m, _ := proto.Marshal(msg(full))
	// An unknown field inside the message, a field of another wire type,
	// invalid UTF-8, two members of the oneof, a message field twice.
	inner := protowire.AppendTag(nil, 1, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 5)
	withField := func(extra []byte) []byte {
		body := append(append([]byte(nil), inner...), extra...)
		f := protowire.AppendTag(nil, fieldResponseMessage, protowire.BytesType)
		return protowire.AppendBytes(f, body)
	}
	out = append(out,
		withField(protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte("x"))),
		withField(protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)),
		withField(protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{0xff})),
		withField(protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType),
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("s2")))),
		append(append([]byte(nil), m...), m...),
		[]byte{0xff, 0xff},
	)
	return out
}

// checkDecode holds inFrame.decode to proto's decoding of b.
func checkDecode(t *testing.T, b []byte) {
	var want tetherv1.ConnectResponse
	perr := proto.Unmarshal(b, &want)
	var in inFrame
	err := in.decode(b)
	if (err != nil) != (perr != nil) {
		t.Fatalf("decode(%x) = %v; proto: %v", b, err, perr)
	}
	if err != nil {
		return
	}
	var wantMsgs []*tetherv1.ServerMessage
	switch {
	case want.GetMessage() != nil:
		wantMsgs = []*tetherv1.ServerMessage{want.GetMessage()}
	case want.GetBatch() != nil:
		wantMsgs = want.GetBatch().GetMessages()
	default:
		if in.frame == nil || !proto.Equal(in.frame, &want) {
			t.Fatalf("decode(%x) = %v / %v; proto: %v", b, in.frame, in.msgs, &want)
		}
		return
	}
	got := in.msgs
	if in.frame != nil {
		got = nil
		for _, pm := range append(in.frame.GetBatch().GetMessages(), in.frame.GetMessage()) {
			if pm != nil {
				got = append(got, fromProto(pm))
			}
		}
	}
	if len(got) != len(wantMsgs) {
		t.Fatalf("decode(%x): %d messages; proto: %d", b, len(got), len(wantMsgs))
	}
	for i, pm := range wantMsgs {
		if w := fromProto(pm); !reflect.DeepEqual(got[i], w) {
			t.Fatalf("decode(%x) message %d:\n%+v\nproto:\n%+v", b, i, got[i], w)
		}
	}
}

func TestDecodeMatchesProto(t *testing.T) {
	t.Parallel()
	for i, b := range decodeFrames(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkDecode(t, b) })
	}
}

// A message frame is decoded by hand, with no proto frame built, and a
// string shared with the message before it is not allocated again.
func TestDecodeByHand(t *testing.T) { // not parallel: AllocsPerRun
	b, err := proto.Marshal(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Batch{Batch: &tetherv1.ServerMessageBatch{Messages: []*tetherv1.ServerMessage{
		{Seq: 1, Topic: "news", Payload: []byte("a")}, {Seq: 2, Topic: "news", Payload: []byte("b")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var in inFrame
	if err := in.decode(b); err != nil || in.frame != nil || len(in.msgs) != 2 {
		t.Fatalf("decode: %v, frame %v, %d messages; want 2 messages decoded by hand", err, in.frame, len(in.msgs))
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = in.decode(b) }); allocs > 4 {
		t.Errorf("decoding a batch of 2 allocates %v times; want at most 4 (each message and its payload)", allocs)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, b := range decodeFrames(f) {
		f.Add(b)
	}
	f.Fuzz(checkDecode)
}

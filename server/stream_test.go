package server

import (
	"testing"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Control frames never wait behind queued messages.
func TestControlFramesGoFirst(t *testing.T) {
	t.Parallel()
	st := newStream(nil, nil, "")
	for i := range 3 {
		st.pushData(broker.Entry{Seq: uint64(i + 1), Message: &broker.Message{Target: broker.Topic("t")}})
	}
	st.pushCtrl(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: &tetherv1.Pong{Id: 7}}})
	st.pushCtrl(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ack{Ack: &tetherv1.Ack{Seq: 4}}})
	var order []string
	for {
		f := nextFrame(st)
		if f == nil {
			break
		}
		switch x := f.Frame.(type) {
		case *tetherv1.ConnectResponse_Pong:
			order = append(order, "pong")
		case *tetherv1.ConnectResponse_Ack:
			order = append(order, "ack")
		case *tetherv1.ConnectResponse_Message:
			order = append(order, "msg"+string(rune('0'+x.Message.GetSeq())))
		}
	}
	want := []string{"pong", "ack", "msg1", "msg2", "msg3"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

// A stream closing after a GoAway writes its control frames, not its data.
func TestCloseAfterFlushDropsData(t *testing.T) {
	t.Parallel()
	st := newStream(nil, nil, "")
	st.pushData(broker.Entry{Seq: 1, Message: &broker.Message{}})
	st.pushCtrl(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_GoAway{GoAway: &tetherv1.GoAway{}}})
	st.closeAfterFlush(nil)
	if o, end, _ := st.next(false); end || o.ctrl.GetGoAway() == nil {
		t.Fatalf("first = %v (end %v), want the go_away", o, end)
	}
	if o, end, _ := st.next(false); !end || o.ctrl != nil || o.msgs != nil {
		t.Fatalf("second = %v (end %v), want the end", o, end)
	}
}

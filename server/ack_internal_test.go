package server

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Under load acks are batched: while an Ack waits to be written, the
// messages received meanwhile update it instead of queuing more.
func TestAcksCoalesceWhileTheWriterIsBusy(t *testing.T) {
	t.Parallel()
	s, st := unstartedSession(t)
	for seq := uint64(1); seq <= 100; seq++ {
		s.inSeq.Store(seq)
		st.noteReceived(seq)
	}
	var acks []uint64
	for f := nextFrame(st); f != nil; f = nextFrame(st) {
		if a := f.GetAck(); a != nil {
			acks = append(acks, a.GetSeq())
		}
	}
	if len(acks) != 1 || acks[0] != 100 {
		t.Fatalf("acks %v for 100 messages received while the writer was busy; want one, [100]", acks)
	}
	// Once it is written, the next message is acked at once again.
	s.inSeq.Store(101)
	st.noteReceived(101)
	if f := nextFrame(st); f.GetAck().GetSeq() != 101 {
		t.Fatalf("got %v after the ack was written; want ack 101", f)
	}
}

// An Ack waiting to be written does not coalesce past a failed message: its
// Error frame comes before the Ack that covers it.
func TestErrorFrameComesBeforeTheAckThatCoversIt(t *testing.T) {
	t.Parallel()
	s, st := unstartedSession(t)
	s.inSeq.Store(1)
	st.noteReceived(1)
	st.sendError(status.Error(codes.NotFound, "no such client"), 2)
	for seq := uint64(2); seq <= 3; seq++ {
		s.inSeq.Store(seq)
		st.noteReceived(seq)
	}
	var got []string
	for f := nextFrame(st); f != nil; f = nextFrame(st) {
		switch {
		case f.GetAck() != nil:
			got = append(got, fmt.Sprint("ack ", f.GetAck().GetSeq()))
		case f.GetError() != nil:
			got = append(got, fmt.Sprint("error ", f.GetError().GetSeq()))
		}
	}
	if want := []string{"ack 1", "error 2", "ack 3"}; !slices.Equal(got, want) {
		t.Fatalf("frames %q; want %q", got, want)
	}
}

// unstartedSession is a fresh session on a stream whose writer never runs:
// the test pops its frames (stream.next).
func unstartedSession(t *testing.T) (*Session, *stream) {
	t.Helper()
	srv, err := New(WithServerID("acks"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	st := newStream(srv, nil, "test") // not started: nothing writes
	s, _, err := srv.create(context.Background(), st, "", &tetherv1.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.finish(nil) })
	return s, st
}

// nextFrame is what st's writer would write next, as a proto frame; nil
// when nothing waits.
func nextFrame(st *stream) *tetherv1.ConnectResponse {
	o, _, _ := st.next(false)
	if o.ctrl != nil || len(o.msgs) == 0 {
		return o.ctrl
	}
	return st.messageFrame(o.msgs)
}

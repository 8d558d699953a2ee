package server

import (
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// sinkStream is a Connect stream whose Send only counts frames.
type sinkStream struct {
	grpc.ServerStream
	mu     sync.Mutex
	frames []string
}

func (s *sinkStream) Context() context.Context { return context.Background() }

func (s *sinkStream) Recv() (*tetherv1.ConnectRequest, error) { return nil, io.EOF }

func (s *sinkStream) Send(f *tetherv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, string(f.ProtoReflect().WhichOneof(f.ProtoReflect().Descriptor().Oneofs().ByName("frame")).Name()))
	return nil
}

func (s *sinkStream) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frames...)
}

func (st *stream) writerState() (writing, lingering bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.writing, st.lingering
}

// The writer runs only while frames wait: it exits at once after control
// frames (an idle stream's pong), lingers writerLinger after messages, is
// woken rather than restarted for more within it, and exits after it.
func TestWriterRunsOnlyWhileNeeded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv, err := New(WithServerID("w"))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ss := &sinkStream{}
		st := newStream(srv, ss, "test")
		s, token, err := srv.create(context.Background(), st, "", &tetherv1.Hello{ClientId: "c"})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.welcome(st, s, tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED, nil, token); err != nil {
			t.Fatal(err)
		}
		defer st.finish(nil)
		if w, _ := st.writerState(); w {
			t.Fatal("a writer runs before the stream started")
		}
		st.start()
		synctest.Wait()
		if w, l := st.writerState(); w || l {
			t.Fatalf("after Welcome: writing %v, lingering %v; want no writer", w, l)
		}
		st.pushPong(&tetherv1.Ping{Id: 1})
		synctest.Wait()
		if w, _ := st.writerState(); w {
			t.Fatal("the writer stayed after a pong")
		}
		msg := func(seq uint64) broker.Entry {
			return broker.Entry{Seq: seq, Message: &broker.Message{Target: broker.Topic("t"), PublishedAt: time.Now()}}
		}
		st.pushData(msg(1))
		synctest.Wait()
		if w, l := st.writerState(); !w || !l {
			t.Fatalf("after a message: writing %v, lingering %v; want a lingering writer", w, l)
		}
		time.Sleep(writerLinger / 2)
		st.pushData(msg(2))
		synctest.Wait()
		if w, l := st.writerState(); !w || !l {
			t.Fatalf("after a second message: writing %v, lingering %v; want the writer lingering again", w, l)
		}
		time.Sleep(writerLinger - time.Nanosecond)
		synctest.Wait()
		if w, _ := st.writerState(); !w {
			t.Fatal("the writer left before writerLinger passed")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if w, l := st.writerState(); w || l {
			t.Fatalf("writerLinger after the last message: writing %v, lingering %v; want no writer", w, l)
		}
		want := []string{"welcome", "pong", "message", "message"}
		if got := ss.sent(); len(got) != len(want) {
			t.Fatalf("sent %v, want %v", got, want)
		} else {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("sent %v, want %v", got, want)
				}
			}
		}
		// A closing stream wakes no writer it does not need, and ends.
		st.pushData(msg(3))
		st.closeAfterFlush(nil)
		synctest.Wait()
		select {
		case <-st.done:
		default:
			t.Fatal("the stream did not end after closeAfterFlush")
		}
	})
}

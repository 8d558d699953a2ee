package client_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"google.golang.org/protobuf/proto"

	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// These tests hold the SDK's side of the protocol's "Batches" (see
// frames.proto) against a scripted TetherService in a synctest bubble.

func TestHelloAsksForBatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []client.Option
		want uint32
	}{
		{"default", nil, client.DefaultMaxBatch},
		{"WithMaxBatch(16)", []client.Option{client.WithMaxBatch(16)}, 16},
		{"WithMaxBatch(0)", []client.Option{client.WithMaxBatch(0)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				if got := firstHello(t, tc.opts...).GetMaxBatch(); got != tc.want {
					t.Fatalf("Hello.max_batch = %d, want %d", got, tc.want)
				}
			})
		})
	}
	if _, err := client.New(client.WithAddrs("127.0.0.1:1"), client.WithMaxBatch(-1)); err == nil || !strings.Contains(err.Error(), "WithMaxBatch") {
		t.Errorf("WithMaxBatch(-1): New = %v; want an error naming the option", err)
	}
}

// sentFrames records the message frames a fake server received: for each,
// the seqs it carried.
type sentFrames struct {
	mu     sync.Mutex
	frames [][]uint64
	sizes  []int // each frame's encoded size
	count  int
	all    chan struct{} // closed once want messages arrived
	want   int
}

func newSentFrames(want int) *sentFrames {
	return &sentFrames{want: want, all: make(chan struct{})}
}

func (r *sentFrames) on(f *tetherv1.ConnectRequest) error {
	var seqs []uint64
	switch {
	case f.GetMessage() != nil:
		seqs = []uint64{f.GetMessage().GetSeq()}
	case f.GetBatch() != nil:
		for _, m := range f.GetBatch().GetMessages() {
			seqs = append(seqs, m.GetSeq())
		}
	default:
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, seqs)
	r.sizes = append(r.sizes, proto.Size(f))
	if r.count += len(seqs); r.count >= r.want {
		close(r.all)
	}
	return nil
}

// sendQueued queues n messages of payload bytes before the session
// connects, so that its writer finds them all waiting, connects, and
// returns the frames that carried them, having checked that their seqs
// are 1…n in order.
func sendQueued(t *testing.T, welcome func(*tetherv1.Welcome), n, payload int, opts ...client.Option) *sentFrames {
	t.Helper()
	got := newSentFrames(n)
	f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
		if err := st.welcome(welcome); err != nil {
			return err
		}
		return st.serve(got.on)
	}}
	s := flowSession(t, f, opts...)
	for i := range n {
		if err := s.Send(t.Context(), client.Message{Topic: "t", Payload: []byte(strings.Repeat("x", payload)), IdempotencyKey: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-got.all
	got.mu.Lock()
	defer got.mu.Unlock()
	want := uint64(1)
	for _, f := range got.frames {
		for _, seq := range f {
			if seq != want {
				t.Fatalf("frames %v: seq %d where %d was due", got.frames, seq, want)
			}
			want++
		}
	}
	return got
}

func TestBatchesOnlyWhenGranted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		got := sendQueued(t, nil, 50, 10)
		for _, f := range got.frames {
			if len(f) != 1 {
				t.Fatalf("a server that granted no batches (Welcome.max_batch 0) got a batch of %d", len(f))
			}
		}
	})
}

func TestBatchesWithinTheGrant(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		got := sendQueued(t, func(w *tetherv1.Welcome) { w.MaxBatch = 16 }, 50, 10)
		batched := 0
		for _, f := range got.frames {
			if len(f) > 16 {
				t.Fatalf("a batch of %d; Welcome.max_batch is 16", len(f))
			}
			if len(f) > 1 {
				batched++
			}
		}
		if batched == 0 {
			t.Fatalf("50 queued messages went in %d frames, none a batch", len(got.frames))
		}
	})
}

// A batch stays within the frame burst: its messages count as frames.
func TestBatchesWithinTheFrameBurst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		got := sendQueued(t, func(w *tetherv1.Welcome) {
			w.MaxBatch = 16
			w.Limits = &tetherv1.Limits{MaxFramesPerSecond: 1000000, MaxFrameBurst: 4}
		}, 30, 10)
		for _, f := range got.frames {
			if len(f) > 4 {
				t.Fatalf("a batch of %d; Limits.max_frame_burst is 4", len(f))
			}
		}
	})
}

// A batch stays within Limits.max_frame_bytes, and a message that does not
// fit with others goes alone.
func TestBatchesWithinTheFrameLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const limit = 1000
		got := sendQueued(t, func(w *tetherv1.Welcome) {
			w.MaxBatch = 128
			w.Limits = &tetherv1.Limits{MaxFrameBytes: limit, MaxMessageBytes: 500}
		}, 30, 300)
		for i, n := range got.sizes {
			if n > limit {
				t.Fatalf("frame %d (%d messages) is %d bytes; Limits.max_frame_bytes is %d", i, len(got.frames[i]), n, limit)
			}
		}
		if len(got.frames) == 30 {
			t.Fatalf("30 queued 300-byte messages went in 30 frames under a 1000-byte frame limit: none batched")
		}
	})
}

func TestReceivesBatches(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		batch := func(first, last uint64) *tetherv1.ConnectResponse {
			b := &tetherv1.ServerMessageBatch{}
			for seq := first; seq <= last; seq++ {
				b.Messages = append(b.Messages, &tetherv1.ServerMessage{Seq: seq, Payload: fmt.Appendf(nil, "m%d", seq)})
			}
			return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Batch{Batch: b}}
		}
		f := &flowFake{script: func(_ int, _ *tetherv1.Hello, st *flowStream) error {
			if err := st.welcome(func(w *tetherv1.Welcome) { w.MaxBatch = 8 }); err != nil {
				return err
			}
			// 3 to 5 again: the application sees each message once.
			if err := st.send(batch(1, 5)); err != nil {
				return err
			}
			if err := st.send(batch(3, 7)); err != nil {
				return err
			}
			return st.serve(nil)
		}}
		s := flowSession(t, f)
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(receiveN(t, s, 7), " ")
		if want := "1:m1 2:m2 3:m3 4:m4 5:m5 6:m6 7:m7"; got != want {
			t.Fatalf("received %s; want %s", got, want)
		}
	})
}

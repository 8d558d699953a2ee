package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// The window and the log bound hold whatever the interleaving of
// deliveries, writes and acks: the writer (played here) never has more
// than the window in flight (one message always may go alone), the log
// never holds more than its bounds, every message queued arrives once and
// in order, and a refused one (backpressure) takes no seq.
func TestWindowAndLogBoundsHold(t *testing.T) {
	t.Parallel()
	refusals := 0
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 15))
		const maxQueue, maxBytes = 64, 4096
		srv, err := New(WithServerID("w"), WithMaxOutboundQueue(maxQueue), WithMaxOutboundBytes(maxBytes))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := newStream(srv, nil, "test")
		win := &tetherv1.ReceiveWindow{Messages: uint32(1 + rng.IntN(16)), Bytes: uint32(100 + rng.IntN(1000))}
		st.setWindow(srv.grantWindow(&tetherv1.Hello{ReceiveWindow: win}))
		s, _, err := srv.create(context.Background(), st, "", &tetherv1.Hello{ClientId: "c"})
		if err != nil {
			t.Fatal(err)
		}
		var queued, received, acked uint64
		var flight []int // payload sizes received and not acked
		for range 3000 {
			switch rng.IntN(3) {
			case 0: // deliver
				size := rng.IntN(300)
				if rng.IntN(50) == 0 {
					size = 2000 // larger than any byte window here
				}
				_, err := srv.publish(context.Background(), &broker.Message{Target: broker.Client("c"), Payload: make([]byte, size), PublishedAt: time.Now()})
				switch {
				case errors.Is(err, broker.ErrFull):
					refusals++
				case err != nil:
					t.Fatal(err)
				default:
					queued++
				}
			case 1: // the writer writes what the window allows
				for {
					f := nextFrame(st)
					if f == nil {
						break
					}
					m := f.GetMessage()
					if m == nil {
						continue
					}
					received++
					if m.GetSeq() != received {
						t.Fatalf("seed %d: got seq %d, want %d", seed, m.GetSeq(), received)
					}
					storeMax(&s.sentSeq, m.GetSeq())
					flight = append(flight, len(m.GetPayload()))
					total := 0
					for _, n := range flight {
						total += n
					}
					if len(flight) > 1 && (len(flight) > int(win.GetMessages()) || total > int(win.GetBytes())) {
						t.Fatalf("seed %d: %d messages, %d bytes in flight; window %v", seed, len(flight), total, win)
					}
				}
			case 2: // the client acks some of what it received
				if received > acked {
					n := 1 + rng.IntN(int(received-acked))
					acked += uint64(n)
					flight = flight[n:]
					if err := s.ack(acked); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.mu.Lock()
			held, bytes := s.held.len(), s.heldBytes
			s.mu.Unlock()
			if held > maxQueue || held > 1 && bytes > maxBytes {
				t.Fatalf("seed %d: the log holds %d messages, %d bytes", seed, held, bytes)
			}
		}
		// The client acks all it has, and everything queued arrives.
		for received < queued {
			if err := s.ack(received); err != nil {
				t.Fatal(err)
			}
			before := received
			for f := nextFrame(st); f != nil; f = nextFrame(st) {
				if m := f.GetMessage(); m != nil {
					if received++; m.GetSeq() != received {
						t.Fatalf("seed %d: got seq %d, want %d", seed, m.GetSeq(), received)
					}
					storeMax(&s.sentSeq, m.GetSeq())
				}
			}
			if received == before {
				t.Fatalf("seed %d: stuck at %d of %d queued", seed, received, queued)
			}
		}
		if queued < 100 {
			t.Fatalf("seed %d: only %d queued: the test exercised too little", seed, queued)
		}
		st.finish(nil)
		_ = srv.Close()
	}
	if refusals == 0 {
		t.Fatal("no delivery found the log full: the test exercised too little")
	}
}

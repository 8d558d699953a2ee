package server_test

import (
	"testing"
	"testing/synctest"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// pongAt waits for the pong to ping id and returns when it arrived,
// failing on the stream's end.
func pongAt(t *testing.T, c *bubbleConn, id uint64) time.Time {
	t.Helper()
	for f := range c.frames {
		if f.f.GetPong().GetId() == id {
			return f.at
		}
		if f.f.GetGoAway() != nil || f.f.GetError() != nil {
			t.Fatalf("got %v while waiting for pong %d", f.f, id)
		}
	}
	t.Fatalf("the stream ended while waiting for pong %d: %v", id, c.endErr)
	return time.Time{}
}

// A stream above its frame rate is read more slowly, not cut: a flood of
// 1,000 pings at 100 frames/s (bursts of 10) is read to its end at the
// rate, while another session's messages flow as usual.
func TestFrameFloodIsPaced(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t, server.WithFrameRate(100, 10))
		good, _ := b.connect(t, &tetherv1.Hello{ClientId: "good"})
		flood, w := b.connect(t, &tetherv1.Hello{ClientId: "flood"})
		if l := w.GetLimits(); l.GetMaxFramesPerSecond() != 100 || l.GetMaxFrameBurst() != 10 {
			t.Fatalf("limits %v, want 100 frames/s, bursts of 10", l)
		}
		start := time.Now()
		for i := range 1000 {
			flood.send(t, ping(uint64(i+1)))
		}
		time.Sleep(time.Second)
		if _, err := b.srv.Publish(t.Context(), brokerClient("good"), []byte("still flowing"), ""); err != nil {
			t.Fatal(err)
		}
		for f := range good.frames {
			if m := f.f.GetMessage(); m != nil {
				if d := f.at.Sub(start); d != time.Second {
					t.Fatalf("the other session's message took until %v, want at once (1s)", d)
				}
				break
			}
		}
		// 990 frames beyond the burst at 100/s: the last is read 9.9 s in.
		if d := pongAt(t, flood, 1000).Sub(start); d < 9890*time.Millisecond || d > 9910*time.Millisecond {
			t.Fatalf("the last of 1,000 pings was answered after %v, want 9.9s", d)
		}
	})
}

// The time the server spends pacing a stream is not the client's silence:
// a pacing delay longer than the dead-peer deadline (interval × misses +
// grace) does not end the stream.
func TestPacingIsNotSilence(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// A token every 30 s; the default profile's deadline for a 5 s
		// heartbeat is 5 s × 3 + 5 s = 20 s.
		b := startBubbleNode(t, server.WithFrameRate(1.0/30, 1))
		c, w := b.connect(t, &tetherv1.Hello{HeartbeatInterval: durationpbNew(5 * time.Second)})
		if got := w.GetHeartbeatInterval().AsDuration(); got != 5*time.Second {
			t.Fatalf("heartbeat %v, want 5s", got)
		}
		start := time.Now()
		for i := range 3 {
			c.send(t, ping(uint64(i+1)))
		}
		for i, want := range []time.Duration{0, 30 * time.Second, 60 * time.Second} {
			if d := pongAt(t, c, uint64(i+1)).Sub(start); d != want {
				t.Fatalf("pong %d after %v, want %v", i+1, d, want)
			}
		}
	})
}

// ackAt waits for an Ack covering seq and returns when it arrived.
func ackAt(t *testing.T, c *bubbleConn, seq uint64) time.Time {
	t.Helper()
	for f := range c.frames {
		if f.f.GetAck().GetSeq() >= seq {
			return f.at
		}
		if f.f.GetError() != nil || f.f.GetGoAway() != nil {
			t.Fatalf("got %v while waiting for the ack of %d", f.f, seq)
		}
	}
	t.Fatalf("the stream ended while waiting for the ack of %d: %v", seq, c.endErr)
	return time.Time{}
}

// Acks cost no latency: a message is acked at once when the sender asks
// (ack_now) and when nothing else waits to be acked, which is every message
// of a sender that waits for each one, ack_now or not.
func TestAcksComeAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := startBubbleNode(t)
		c, _ := b.connect(t, &tetherv1.Hello{ClientId: "acks"})
		for i, ackNow := range []bool{true, false, false, true} {
			seq := uint64(i + 1)
			time.Sleep(time.Millisecond)
			sent := time.Now()
			c.send(t, message(&tetherv1.ClientMessage{Seq: seq, AckNow: ackNow,
				Target: &tetherv1.ClientMessage_Topic{Topic: "t"}, Payload: []byte("x")}))
			if at := ackAt(t, c, seq); at != sent {
				t.Fatalf("message %d (ack_now %v) was acked %v after it was sent, want at once", seq, ackNow, at.Sub(sent))
			}
		}
	})
}

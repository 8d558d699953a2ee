package server

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/liveness"
	"github.com/tetherhq/tether/profile"
)

// fzDuration reads a duration as a client could send it: seconds and
// nanos of any value, valid or not.
func fzDuration(b []byte) *durationpb.Duration {
	var buf [12]byte
	copy(buf[:], b)
	return &durationpb.Duration{Seconds: int64(binary.LittleEndian.Uint64(buf[:8])) >> (buf[0] % 64), Nanos: int32(binary.LittleEndian.Uint32(buf[8:]))}
}

// FuzzLivenessFrames sends SetHeartbeat, Ping.rtt and Suspend frames with
// arbitrary durations. Every invalid one ends the stream with
// INVALID_ARGUMENT naming the field; a valid SetHeartbeat clamps into the
// profile's bounds and the dead-after stays within [interval + floor,
// interval × misses + grace]; a valid Suspend ends the stream with OK and
// the session is suspended for at most the maximum window.
func FuzzLivenessFrames(f *testing.F) {
	f.Add([]byte{0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})       // SetHeartbeat 30s
	f.Add([]byte{1, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})      // Ping.rtt 100ns·2^…
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})        // Suspend, the maximum
	f.Add([]byte{0, 255, 255, 255, 255, 255, 255, 255, 255, 1}) // a huge interval
	f.Add(bytes.Repeat([]byte{1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 5))
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := profile.Default()
		h := newFzHarness(t, WithProfile(p), WithMaxSuspendWindow(time.Hour))
		c := h.dial("")
		id := c.open(&tetherv1.Hello{ClientId: "a"}).GetSessionId()
		s := h.session(id)
		for i := 0; i+13 <= len(ops) && i < 13*32; i += 13 {
			d := fzDuration(ops[i+1 : i+13])
			valid := d.CheckValid() == nil
			switch ops[i] % 3 {
			case 0:
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_SetHeartbeat{SetHeartbeat: &tetherv1.SetHeartbeat{Interval: d}}})
				if !valid || d.AsDuration() <= 0 {
					c.expectEnd(codes.InvalidArgument, "set_heartbeat.interval")
					return
				}
			case 1:
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: uint64(i), SentAt: timestamppb.Now(), Rtt: d}}})
			case 2:
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Suspend{Suspend: &tetherv1.Suspend{Window: d}}})
				if !valid || d.AsDuration() < 0 {
					c.expectEnd(codes.InvalidArgument, "suspend.window")
					return
				}
				if err := c.end(); err != nil {
					t.Fatalf("Suspend ended the stream with %v; want OK", err)
				}
				s.mu.Lock()
				state, window := s.adminStateLocked(), s.resumeWindowLocked()
				s.mu.Unlock()
				if state != tetherv1.SessionState_SESSION_STATE_SUSPENDED || window < DefaultResumeWindow || window > time.Hour {
					t.Fatalf("after Suspend(%v): %v for %v", d, state, window)
				}
				return
			}
			if !c.sync() {
				t.Fatalf("the stream ended (%v) after a valid frame", c.end())
			}
			s.mu.Lock()
			st := s.st
			s.mu.Unlock()
			iv, dead := st.deadline()
			hb := p.Heartbeat
			if iv < hb.Min || iv > hb.Max || dead < iv+min(hb.RTTFloor, liveness.Fixed(iv, hb.Misses, hb.Grace)-iv) || dead > liveness.Fixed(iv, hb.Misses, hb.Grace) {
				t.Fatalf("interval %v, dead after %v: outside the bounds", iv, dead)
			}
		}
	})
}

package server

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/liveness"
)

// rttState is a stream's RTT-derived liveness: the round-trip estimator and
// the numbers its dead-after is computed from (see tetherv1.RttTimeout).
// Guarded by stream.mu.
type rttState struct {
	est     liveness.RTT
	timeout liveness.Timeout
	misses  int
	grace   time.Duration
}

// maxRTTSample bounds the round trips taken in: anything longer is a
// clock that stepped, not a path.
const maxRTTSample = time.Hour

// initRTTLocked takes the profile's numbers for the stream's liveness.
func (st *stream) initRTTLocked(misses int, grace time.Duration) {
	st.live.misses, st.live.grace = misses, grace
	if st.srv != nil {
		h := st.srv.cfg.profile.Heartbeat
		st.live.timeout = liveness.Timeout{Floor: h.RTTFloor, Multiplier: h.RTTMultiplier}
	}
	st.deadAfter = st.deadAfterLocked()
}

// deadAfterLocked is the silence after which the client is dead: the
// fixed interval × misses + grace until a round trip is known, then the
// RTT-derived timeout when the profile turns it on.
func (st *stream) deadAfterLocked() time.Duration {
	fixed := liveness.Fixed(st.interval, st.live.misses, st.live.grace)
	return st.live.timeout.DeadAfter(st.interval, fixed, &st.live.est)
}

// deadline returns the heartbeat interval and the dead-after in force.
func (st *stream) deadline() (interval, deadAfter time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.interval, st.deadAfter
}

// noteRTT takes in a round trip: one the server measured with its own
// ping, or one the client reported in its ping (Ping.rtt).
func (st *stream) noteRTT(rtt time.Duration) {
	if rtt < 0 || rtt >= maxRTTSample {
		return
	}
	st.mu.Lock()
	st.live.est.Add(rtt)
	st.deadAfter = st.deadAfterLocked()
	st.mu.Unlock()
}

// notePeerRTT takes in the round trip a client reported in its ping, if it
// reported one.
func (st *stream) notePeerRTT(d *durationpb.Duration) {
	if d == nil || d.CheckValid() != nil {
		return
	}
	st.noteRTT(d.AsDuration())
}

// setHeartbeat handles SetHeartbeat: the client heartbeats at another
// interval from now on (its adaptive heartbeat learned one), so the
// server's pings and dead-after follow it.
func (st *stream) setHeartbeat(f *tetherv1.SetHeartbeat) error {
	d := f.GetInterval()
	if d == nil || d.CheckValid() != nil || d.AsDuration() <= 0 {
		return status.Error(codes.InvalidArgument, "set_heartbeat.interval must be a valid, positive duration: the heartbeat interval the client uses from now on")
	}
	hb := st.srv.cfg.profile.Heartbeat
	iv := min(max(d.AsDuration(), hb.Min), hb.Max)
	now := time.Now()
	st.mu.Lock()
	st.interval = iv
	st.deadAfter = st.deadAfterLocked()
	dead := st.deadAfter
	st.heartbeatLocked(now, false) // the frame is life; re-arm for the new numbers
	st.mu.Unlock()
	s := st.sess
	s.mu.Lock()
	s.interval = iv
	s.mu.Unlock()
	st.srv.metrics.heartbeatChanges.Inc()
	s.record(event{at: now, kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_HEARTBEAT_CHANGED,
		detail: fmt.Sprintf("heartbeat interval %v (asked %v); dead after %v of silence", iv, d.AsDuration(), dead)})
	return nil
}

// livenessOffer is Welcome.liveness: what the server offers beyond the
// fixed heartbeat.
func (srv *Server) livenessOffer() *tetherv1.Liveness {
	l := &tetherv1.Liveness{
		SetHeartbeat:     true,
		Suspend:          true,
		MaxSuspendWindow: durationpb.New(srv.cfg.maxSuspendWindow),
	}
	if h := srv.cfg.profile.Heartbeat; h.RTTMultiplier > 0 {
		l.RttTimeout = &tetherv1.RttTimeout{Floor: durationpb.New(h.RTTFloor), Multiplier: uint32(h.RTTMultiplier)}
	}
	return l
}

// serveTimed is serve, during which the stream is busy: the time the
// server takes to handle a frame (a broker that is slow to take a message,
// a NATS server failing over) is its own, not the client's silence, which
// the dead-after counts. The frames the client sends meanwhile wait in
// gRPC's buffers. As after pace, silence counts from the end of it. A
// tighter dead-after (the RTT-derived one: 2s in the datacenter profile)
// would otherwise cut a stream whose reader waits on the broker.
func (st *stream) serveTimed(req *tetherv1.ConnectRequest) bool {
	st.busy.Store(true)
	defer func() {
		storeMaxInt(&st.lastRead, time.Now().UnixNano())
		st.busy.Store(false)
	}()
	return st.serve(req)
}

package server

import (
	"maps"
	"math"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// welcome queues Welcome, with the token issued when the stream attached,
// ahead of the replay. It fails when another stream took the session over
// in the meantime.
func (srv *Server) welcome(st *stream, s *Session, rs tetherv1.ResumeStatus, lost *tetherv1.SeqRange, token string) error {
	s.mu.Lock()
	if s.st != st {
		s.mu.Unlock()
		return status.Error(codes.Aborted, "session taken over by a newer stream before this one was welcomed")
	}
	s.putRecordLocked()
	hb := srv.cfg.profile.Heartbeat
	shared := srv.welcomeShared()
	w := &tetherv1.Welcome{
		SessionId:         s.id,
		ClientId:          s.clientID,
		ResumeToken:       token,
		Resumed:           rs == tetherv1.ResumeStatus_RESUME_STATUS_RESUMED || rs == tetherv1.ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP,
		ResumeStatus:      rs,
		Lost:              lost,
		ServerId:          srv.cfg.serverID,
		HeartbeatInterval: durationpb.New(s.interval),
		HeartbeatMisses:   uint32(hb.Misses),
		DeadAfter:         durationpb.New(s.interval*time.Duration(hb.Misses) + hb.Grace),
		ResumeAnywhere:    srv.resumeAnywhere(),
		KeepaliveMinTime:  shared.keepaliveMinTime,
		ResumeWindow:      shared.resumeWindow,
		LastReceivedSeq:   s.inSeq.Load(),
		LastSentSeq:       s.outSeq,
		Limits:            shared.limits,
		TookOver:          s.tookOver,
		Liveness:          srv.livenessOffer(),
	}
	w.Topics = slices.Sorted(maps.Keys(s.topics))
	s.unlock() // and stores the record (putRecordLocked)
	st.mu.Lock()
	w.ReceiveWindow = st.win.proto()
	w.MaxBatch = uint32(st.maxBatch)
	st.ctrl.pushFront(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Welcome{Welcome: w}})
	st.mu.Unlock() // written once Connect starts the writer
	return nil
}

// welcomeShared are the parts of Welcome that are the same for every
// session of a server, built at the first Welcome (Server.welcomeShared)
// and shared, read-only, by every Welcome frame since: built per session,
// they were a sixth of what opening a session allocates, garbage that
// leaves holes among the long-lived allocations of the sessions opened
// meanwhile.
type welcomeShared struct {
	limits           *tetherv1.Limits
	keepaliveMinTime *durationpb.Duration
	resumeWindow     *durationpb.Duration
}

func (srv *Server) newWelcomeShared() welcomeShared {
	return welcomeShared{
		limits:           srv.limits(),
		keepaliveMinTime: durationpb.New(srv.cfg.profile.Enforcement.MinTime),
		resumeWindow:     durationpb.New(srv.cfg.resumeWindow),
	}
}

// limits are the limits the server enforces on every stream, as Welcome
// announces them; each limit's error message names its field.
func (srv *Server) limits() *tetherv1.Limits {
	cfg := srv.cfg
	hb := cfg.profile.Heartbeat
	return &tetherv1.Limits{
		MaxMessageBytes:      uint32(cfg.maxMessageBytes),
		MaxOutboundQueue:     uint32(cfg.maxOutboundQueue),
		MaxTopics:            uint32(cfg.maxTopics),
		MaxFrameBytes:        uint32(srv.maxFrameBytes()),
		MaxFramesPerSecond:   uint32(min(float64(cfg.frameRate), math.MaxUint32)),
		MaxFrameBurst:        uint32(min(cfg.frameBurst, math.MaxUint32)),
		MinHeartbeatInterval: durationpb.New(hb.Min),
		MaxHeartbeatInterval: durationpb.New(hb.Max),
		MaxOutboundBytes:     uint32(cfg.maxOutboundBytes),
		OverflowPolicy:       cfg.overflow.proto(),
	}
}

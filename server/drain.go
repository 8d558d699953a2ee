package server

import (
	"context"
	"errors"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// streamCame and streamGone count live streams for Drain.
func (srv *Server) streamCame() {
	srv.live.Add(1)
}

func (srv *Server) streamGone() {
	n := srv.live.Add(-1)
	if srv.isDraining() {
		srv.metrics.drainRemaining.Set(float64(n))
	}
	select {
	case srv.liveChanged <- struct{}{}:
	default:
	}
}

func (srv *Server) isDraining() bool {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return srv.draining
}

// ErrDraining is returned by Drain when a drain is already running.
var ErrDraining = errors.New("tether/server: already draining")

// Drain stops the node gracefully, in this order:
//
//  1. grpc.health.v1 reports NOT_SERVING for "" and ServiceName, and new
//     sessions are refused with UNAVAILABLE, so load balancers and SDKs stop
//     sending clients here;
//  2. every connected session gets an Ack of everything it sent and a
//     GoAway{DRAIN}, spread evenly over the drain window and never faster
//     than the drain rate (see WithDrain), so the fleet's reconnects do not
//     land on the other backends as one storm; each stream then ends with OK
//     and its unacknowledged messages stay in the session's log for a
//     resume;
//  3. once every stream has ended, or ctx is done, the registered
//     *grpc.Server is stopped: GracefulStop for in-flight unary calls,
//     bounded to 2 seconds (grpc-go's GracefulStop alone waits forever on
//     open streams such as health watches), then Stop;
//  4. the server is closed (see Close).
//
// Drain returns ctx.Err() when ctx ended before every stream did, and nil
// otherwise. Either way the node has stopped when it returns.
func (srv *Server) Drain(ctx context.Context) error {
	srv.mu.Lock()
	if srv.draining {
		srv.mu.Unlock()
		return ErrDraining
	}
	srv.draining = true
	gs := srv.gs
	srv.mu.Unlock()
	live := srv.snapshot()
	srv.setServing(false)
	srv.metrics.drainRemaining.Set(float64(srv.live.Load()))
	srv.cfg.logger.Info("tether: draining", "sessions", len(live), "window", srv.cfg.drainWindow)

	err := srv.goAwayAll(ctx, live)
	// A resume that raced the snapshot may have attached since: look again
	// every second for streams not yet told.
	rescan := time.NewTicker(time.Second)
	defer rescan.Stop()
	for err == nil && srv.live.Load() > 0 {
		select {
		case <-srv.liveChanged:
		case <-rescan.C:
			err = srv.goAwayAll(ctx, srv.snapshot())
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if gs != nil {
		stopped := make(chan struct{})
		go func() {
			defer srv.panicGuard("GracefulStop")
			gs.GracefulStop()
			close(stopped)
		}()
		t := time.NewTimer(2 * time.Second)
		select {
		case <-stopped:
		case <-t.C:
			gs.Stop()
		case <-ctx.Done():
			gs.Stop()
		}
		t.Stop()
		<-stopped
	}
	_ = srv.Close()
	srv.cfg.logger.Info("tether: drained", "forced", err != nil)
	return err
}

// snapshot returns the node's sessions.
func (srv *Server) snapshot() []*Session {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	out := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// goAwayAll sends GoAway{DRAIN} to the sessions, paced.
func (srv *Server) goAwayAll(ctx context.Context, sessions []*Session) error {
	if len(sessions) == 0 {
		return nil
	}
	gap := srv.cfg.drainWindow / time.Duration(len(sessions))
	if floor := time.Duration(float64(time.Second) / srv.cfg.drainRate); gap < floor {
		gap = floor
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for _, s := range sessions {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if s.drain() {
			t.Reset(gap)
		} else {
			t.Reset(0)
		}
	}
	return nil
}

// drain acks what the session sent, sends GoAway{DRAIN} and ends its stream
// with OK. It reports false when the session had no stream.
func (s *Session) drain() bool {
	s.recvMu.Lock() // no frame is half handled when the final ack is taken
	defer s.recvMu.Unlock()
	s.awaitPipeline(marksWait) // nor routed (pipeline.go)
	s.awaitMarks()             // nor its key on its way (marks.go)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil || s.st.leaving.Load() {
		return false
	}
	s.leaveLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_DRAIN, "server "+s.srv.cfg.serverID+" is draining: reconnect to another backend and resume")
	return true
}

// migrate asks the client of st to move to a new connection before the
// profile's MaxConnectionAge closes this one: GoAway{MAX_AGE}, then OK.
func (s *Session) migrate(st *stream) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	s.awaitPipeline(marksWait)
	s.awaitMarks()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == st {
		s.leaveLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_MAX_AGE, "connection reached its maximum age: reconnect (any backend) and resume")
	}
}

// leaveLocked acks everything the client sent, so nothing it sent is
// re-sent elsewhere in vain, then sends a GoAway that asks it to reconnect
// and ends the stream with OK.
func (s *Session) leaveLocked(reason tetherv1.GoAwayReason, msg string) {
	st := s.st
	st.mu.Lock()
	st.queueAckLocked()
	st.mu.Unlock()
	s.goAwayLocked(reason, msg, 0, nil)
}

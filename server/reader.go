package server

import (
	"errors"
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// Connect carries one session over one stream; see the TetherService
// documentation in proto/tether/v1 for the protocol.
func (svc *service) Connect(ss tetherv1.TetherService_ConnectServer) error {
	srv := svc.srv
	ctx := ss.Context()
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	st := newStream(srv, ss, addr)
	srv.metrics.streams.Inc()
	defer srv.metrics.streams.Dec()

	// The reader runs on this goroutine when finish can end the stream
	// under it (see endstream.go). Otherwise it has a goroutine of its
	// own, and this one, once the session is open, only waits, so that it
	// can always return: returning cancels the stream, which is then the
	// only way to unblock a Recv, or a Send stuck on a client that stopped
	// reading. The writer has a goroutine only while frames wait
	// (stream.write).
	if st.ender = streamEnder(ctx); st.ender != nil {
		st.run()
	} else {
		if err := st.awaitHello(ctx); err != nil {
			return err
		}
		st.start()
	}
	<-st.done
	return st.endErr
}

// read runs the stream's reader after Hello: every frame until the stream
// ends.
func (st *stream) read() {
	defer func() {
		if p := recover(); p != nil {
			st.srv.cfg.logger.Error("tether: panic in a session reader", "panic", p, "stack", string(debug.Stack()))
			st.sess.dropStream(st, status.Error(codes.Internal, "internal error"), "internal error")
		}
	}()
	for {
		req, err := st.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				st.halfClosed()
			} else {
				st.sess.dropStream(st, recvStatus(err), "stream broken: "+err.Error())
			}
			return
		}
		st.srv.metrics.framesIn(req)
		if !st.pace(frameCount(req)) || !st.serveTimed(req) {
			return
		}
	}
}

// pace holds the reader back while the stream is above its frame rate
// (Limits.max_frames_per_second, bursts of max_frame_burst): the frame just
// read takes n tokens (one per message of a batch), and when there was none it is served only once the
// token comes. The frames the client sends meanwhile wait in gRPC's
// buffers, then HTTP/2 flow control holds its writes back. The stream is
// never cut for its rate. pace reports false when the stream ended while it
// waited (a broken connection is left to the next read to report).
//
// The time waited is the server's, not the client's silence: lastRead moves
// to its end before the wait, so that the dead-peer deadline never fires
// because the server paced.
func (st *stream) pace(n int) bool {
	now := time.Unix(0, st.lastRead.Load()) // recv's clock reading
	// A batch above the burst (refused as larger than Welcome.max_batch
	// once read) takes the burst: ReserveN would never grant more.
	n = min(n, st.frames.Burst())
	delay := st.frames.ReserveN(now, n).DelayFrom(now)
	if delay <= 0 {
		return true
	}
	st.srv.metrics.pacedReads.Inc()
	storeMaxInt(&st.lastRead, now.Add(delay).UnixNano())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-st.ss.Context().Done(): // the next read reports it
	case <-st.done:
		return false
	}
	return true
}

// storeMaxInt raises a to v unless it is already higher.
func storeMaxInt(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// halfClosed watches a stream the client half-closed: it sends no more,
// but may still listen (grpcurl with -d '{"hello":…}' does). Nothing reads
// it any longer, so nothing would notice its connection die until the
// heartbeat deadline: the stream's context does, and the session detaches
// at once. The reader's goroutine waits for that, or for the stream's end
// (heartbeat deadline, GoAway, Close).
func (st *stream) halfClosed() {
	st.sess.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_HALF_CLOSED,
		detail: "the client half-closed the stream: it only receives now, until its connection ends or its heartbeat deadline"})
	ctx := st.ss.Context()
	select {
	case <-st.done:
	case <-ctx.Done():
		st.sess.dropStream(st, status.FromContextError(ctx.Err()).Err(), "the half-closed stream's connection ended")
	}
}

// serve handles one frame while the stream still carries its session, one
// frame at a time per session (a taken-over stream's reader may still be
// running). It reports false when the reader should stop.
func (st *stream) serve(req *tetherv1.ConnectRequest) bool {
	s := st.sess
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if st.leaving.Load() {
		return !st.finished.Load() // frames after a GoAway are ignored; the client re-sends after resume
	}
	err := st.handle(req)
	if err == nil && st.ctrlBacklog() > maxCtrlBacklog {
		err = status.Errorf(codes.ResourceExhausted, "more than %d control frames (pongs, acks, errors) wait to be written: the client is not reading its stream (reading it more slowly cannot cure that)", maxCtrlBacklog)
	}
	if err != nil {
		s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: err.Error()})
		s.dropStream(st, err, "protocol error")
		return false
	}
	return !st.finished.Load()
}

// recvStatus turns a Recv error into the status the stream ends with. (A
// frame gRPC cannot decode, such as a string field with invalid UTF-8, is
// answered by grpc-go itself with INTERNAL before the handler sees it.)
func recvStatus(err error) error {
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "the stream ended before hello")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.FromContextError(err).Err()
}

func frameName(f *tetherv1.ConnectRequest) string {
	if f.GetFrame() == nil {
		return "an empty frame"
	}
	return string(f.ProtoReflect().WhichOneof(f.ProtoReflect().Descriptor().Oneofs().ByName("frame")).Name())
}

// handle processes one frame after Hello. A returned error ends the stream.
func (st *stream) handle(req *tetherv1.ConnectRequest) error {
	s := st.sess
	switch f := req.Frame.(type) {
	case *tetherv1.ConnectRequest_Ping:
		st.notePeerRTT(f.Ping.GetRtt())
		st.pushPong(f.Ping)
		s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING})
	case *tetherv1.ConnectRequest_Pong:
		st.mu.Lock()
		st.heartbeatLocked(time.Now(), false)
		st.mu.Unlock()
		if at := f.Pong.GetSentAt(); at != nil && at.IsValid() {
			rtt := time.Since(at.AsTime())
			if rtt >= 0 && rtt < time.Hour {
				st.noteRTT(rtt)
				st.srv.metrics.rtt.Observe(rtt.Seconds())
				s.record(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_RTT, rtt: rtt})
			}
		}
	case *tetherv1.ConnectRequest_Message:
		return st.handleMessage(f.Message)
	case *tetherv1.ConnectRequest_Batch:
		return st.handleBatch(f.Batch)
	case *tetherv1.ConnectRequest_Ack:
		return s.ack(f.Ack.GetSeq())
	case *tetherv1.ConnectRequest_Subscribe:
		st.subscribe(f.Subscribe)
	case *tetherv1.ConnectRequest_Unsubscribe:
		st.unsubscribe(f.Unsubscribe)
	case *tetherv1.ConnectRequest_Close:
		s.close(nil, "closed by the client: "+truncate(f.Close.GetReason()))
	case *tetherv1.ConnectRequest_SetHeartbeat:
		return st.setHeartbeat(f.SetHeartbeat)
	case *tetherv1.ConnectRequest_Suspend:
		return st.suspend(f.Suspend)
	case *tetherv1.ConnectRequest_Hello:
		return status.Error(codes.InvalidArgument, "hello may be sent only once, as the first frame")
	default:
		return status.Error(codes.InvalidArgument, "empty or unknown frame: set exactly one of ping, pong, message, batch, ack, subscribe, unsubscribe, close, set_heartbeat or suspend")
	}
	return nil
}

// sendError queues a non-fatal Error frame about client message seq.
func (st *stream) sendError(err error, seq uint64) {
	st.pushError(err, &tetherv1.Error{Seq: seq})
}

// pushError queues e, a non-fatal Error frame, with err's code and message.
// An Ack queued before it stops taking later seqs (see noteReceived): the
// Error frame of a message comes before any Ack that covers it.
func (st *stream) pushError(err error, e *tetherv1.Error) {
	stt := status.Convert(err)
	e.Code, e.Message = uint32(stt.Code()), stt.Message()
	st.mu.Lock()
	st.pendingAck = nil
	st.ctrl.push(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Error{Error: e}})
	st.unlockAndWake()
}

// grpcConnectStream is the stream gRPC hands Connect.
type grpcConnectStream = grpc.GenericServerStream[tetherv1.ConnectRequest, tetherv1.ConnectResponse]

// recv reads the client's next frame. On a gRPC stream it reads into a
// frameBox, so that a frame frameCodec could not decode ends the stream
// with the box's INVALID_ARGUMENT; other streams (tests' fakes) are read
// as they are.
//
// Each frame received is life: recv stores when it came (lastRead), so
// that silence counts from the last frame, Hello included.
func (st *stream) recv() (*tetherv1.ConnectRequest, error) {
	req, err := st.recvFrame()
	if err == nil {
		st.lastRead.Store(time.Now().UnixNano())
	}
	return req, err
}

// recvFrame is recv without the clock.
func (st *stream) recvFrame() (*tetherv1.ConnectRequest, error) {
	g, ok := st.ss.(*grpcConnectStream)
	if !ok {
		return st.ss.Recv()
	}
	// The box and its frame in one allocation.
	b := new(struct {
		box   frameBox
		frame tetherv1.ConnectRequest
	})
	box := &b.box
	box.ConnectRequest = &b.frame
	if err := g.RecvMsg(box); err != nil {
		return nil, err
	}
	if box.err != nil {
		return nil, box.err
	}
	if box.codec && !st.prepares.Load() {
		st.prepares.Store(true)
	}
	return box.ConnectRequest, nil
}

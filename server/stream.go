package server

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// stream is one Connect call carrying a session. Its reader runs on its
// handler goroutine (or on one of its own, the handler goroutine waiting
// for the end: see service.Connect and endstream.go); its writer runs on a
// goroutine of its own, but only while frames wait to be written;
// its heartbeat and dead-peer deadlines share one timer that
// holds no goroutine while it waits.
type stream struct {
	srv  *Server
	ss   tetherv1.TetherService_ConnectServer
	peer string

	mu          sync.Mutex
	ctrl        queue[*tetherv1.ConnectResponse] // control frames: always ahead of data
	pendingPong *tetherv1.Pong                   // the queued, unwritten pong: pings coalesce into it
	pendingGap  *tetherv1.Gap                    // the queued, unwritten gap: a gap that continues it extends it
	data        queue[broker.Entry]
	closing     bool  // end with closeErr once ctrl is written
	closeErr    error // valid when closing
	pendingAck  *tetherv1.Ack
	marks       marks // keys of handled messages on their way to the broker (marks.go)
	timer       *time.Timer
	due         time.Time // when timer fires
	pings       uint64
	pingedAt    time.Time     // when the client last pinged; zero if it never did
	missed      int           // heartbeats already recorded as missed
	started     bool          // the writer may run: Hello was accepted
	writing     bool          // a writer goroutine runs (or the stream ended)
	lingering   bool          // the writer waits on wake for more (see write)
	wake        chan struct{} // wakes a lingering writer; made when one first lingers

	// The receive window granted, and the messages written and not
	// acknowledged, oldest first, with their payload bytes; guarded by mu
	// (see window.go).
	win         window
	flight      queue[sized]
	flightBytes int

	// The writer's own state; only one writer runs at a time, and each
	// hands over to the next through mu.
	msg       *tetherv1.ConnectResponse // reusable message frame, from newMessageFrame
	batch     *tetherv1.ConnectResponse // reusable batch frame (see messageFrame)
	batchMsgs []*tetherv1.ServerMessage // the batch frame's reusable messages
	out       []broker.Entry            // the messages next popped (popMessagesLocked)
	enc       *encoder                  // encodes message frames by hand (encode.go); made by the writer's first message
	synced    uint64                    // with a broker.Syncer: seqs up to this are durable

	maxBatch int         // the batch size granted in Welcome (0: no batches); set before the writer starts
	prepares atomic.Bool // frameCodec reads the stream, so the writer may send preparedFrames

	done     chan struct{}
	ender    statusWriter // writes the stream's status; nil: only Connect's return does (endstream.go)
	phase    atomic.Int32 // phaseHello, phaseOpening or phaseReading (see run)
	finished atomic.Bool
	leaving  atomic.Bool // a GoAway was queued, or the session moved on: ignore further frames
	endErr   error       // valid once done is closed

	sess      *Session // set once Hello is accepted; never changes
	lastRead  atomic.Int64
	lastWrite atomic.Int64
	interval  time.Duration
	deadAfter time.Duration
	live      rttState        // the RTT estimator and dead-after numbers (rtt.go); guarded by mu
	busy      atomic.Bool     // the reader is handling a frame: see serveTimed (rtt.go)
	maxAgeAt  time.Time       // when to send GoAway{MAX_AGE}; zero for never
	expiresAt time.Time       // when the credentials expire; zero for never
	frames    *rate.Limiter   // inbound frame rate
	ackedIn   atomic.Uint64   // highest client seq acknowledged to the client
	refused   uint64          // seq of the client message last refused (see refuse); 0 when none waits; the reader's
	handling  context.Context // the stream's context without its cancel, for handling messages; the reader's
}

func newStream(srv *Server, ss tetherv1.TetherService_ConnectServer, peer string) *stream {
	now := time.Now().UnixNano()
	st := &stream{srv: srv, ss: ss, peer: peer, done: make(chan struct{})}
	st.win = window{messages: defaultWindowMessages, bytes: defaultWindowBytes}
	if srv != nil {
		st.frames = rate.NewLimiter(srv.cfg.frameRate, srv.cfg.frameBurst)
		st.win = srv.grantWindow(nil)
	}
	st.lastRead.Store(now)
	st.lastWrite.Store(now)
	return st
}

// claimWriterLocked reports whether the caller, having queued something,
// must start the writer (with go st.write(), after unlocking mu). A
// lingering writer is woken instead.
func (st *stream) claimWriterLocked() bool {
	if !st.started {
		return false
	}
	if st.writing {
		if st.lingering {
			st.lingering = false
			select {
			case st.wake <- struct{}{}:
			default:
			}
		}
		return false
	}
	st.writing = true
	return true
}

// unlockAndWake unlocks mu, having started or woken the writer if frames
// wait (or the stream is closing).
func (st *stream) unlockAndWake() {
	start := (st.ctrl.len() > 0 || st.sendableLocked() || st.closing) && st.claimWriterLocked()
	st.mu.Unlock()
	if start {
		go st.write()
	}
}

// start lets the writer run once Hello is accepted, and starts it for
// what was queued meanwhile (Welcome).
func (st *stream) start() {
	st.mu.Lock()
	st.started = true
	st.unlockAndWake()
}

func (st *stream) pushCtrl(f *tetherv1.ConnectResponse) {
	st.mu.Lock()
	st.ctrl.push(f)
	st.unlockAndWake()
}

func (st *stream) pushData(e broker.Entry) {
	st.mu.Lock()
	st.data.push(e)
	st.unlockAndWake()
}

// maxCtrlBacklog bounds the control frames waiting to be written; a client
// that keeps sending but does not read is cut off beyond it.
const maxCtrlBacklog = 256

// flushTimeout bounds how long a closing stream may take to write its last
// control frames (a GoAway) before it is ended anyway.
const flushTimeout = 5 * time.Second

// pushPong queues the answer to a ping; pings that arrive while a pong is
// still queued only update it, so a ping flood cannot grow the queue.
func (st *stream) pushPong(p *tetherv1.Ping) {
	st.mu.Lock()
	st.heartbeatLocked(time.Now(), true)
	if st.pendingPong != nil {
		st.pendingPong.Id, st.pendingPong.SentAt = p.GetId(), p.GetSentAt()
		st.mu.Unlock()
		return
	}
	st.pendingPong = &tetherv1.Pong{Id: p.GetId(), SentAt: p.GetSentAt()}
	st.ctrl.push(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Pong{Pong: st.pendingPong}})
	st.unlockAndWake()
}

func (st *stream) ctrlBacklog() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ctrl.len()
}

// closeAfterFlush ends the stream with err once the queued control frames
// are written, or after flushTimeout if the client does not read them;
// queued data is dropped (it stays in the session's log).
func (st *stream) closeAfterFlush(err error) {
	st.leaving.Store(true)
	st.mu.Lock()
	first := !st.closing
	if first {
		st.closing, st.closeErr = true, err
	}
	st.mu.Unlock()
	if first {
		time.AfterFunc(flushTimeout, func() {
			if s := st.sess; s != nil {
				s.dropStream(st, err, "the client did not read its last frames")
			} else {
				st.finish(err)
			}
		})
	}
	st.mu.Lock()
	st.unlockAndWake()
}

// finish ends the stream with err (once). The handler returns err's status.
func (st *stream) finish(err error) {
	if st.finished.Swap(true) {
		return
	}
	st.mu.Lock()
	st.endErr = err
	if st.timer != nil {
		st.timer.Stop()
	}
	st.mu.Unlock()
	close(st.done)
	if st.ender != nil && st.phase.Load() != phaseOpening {
		st.endWith(err)
	}
}

// newMessageFrame returns a writer's reusable data frame, for next.
func newMessageFrame() *tetherv1.ConnectResponse {
	return &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Message{Message: &tetherv1.ServerMessage{}}}
}

// next pops what to write next: a control frame first, else the messages
// the receive window lets go (see window.go), as many as one batch takes
// when the client asked for batches (batch.go), in the writer's st.out:
// the writer sends them before it calls next again. next returns nothing
// when nothing is queued, and then the writer must exit (next has
// released it) or, when linger is set, wait on st.wake; and closeErr,
// true when the stream should end.
func (st *stream) next(linger bool) (outgoing, bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if f, ok := st.ctrl.pop(); ok {
		switch x := f.Frame.(type) {
		case *tetherv1.ConnectResponse_Ack:
			if x.Ack == st.pendingAck {
				st.pendingAck = nil
			}
		case *tetherv1.ConnectResponse_Pong:
			if x.Pong == st.pendingPong {
				st.pendingPong = nil
			}
		case *tetherv1.ConnectResponse_Gap:
			if x.Gap == st.pendingGap {
				st.pendingGap = nil
			}
		}
		return outgoing{ctrl: f}, false, nil
	}
	if st.closing {
		return outgoing{}, true, st.closeErr
	}
	msgs := st.popMessagesLocked()
	if len(msgs) == 0 {
		// Nothing queued, or the window is full: an ack wakes the writer
		// (acked).
		if linger {
			st.lingering = true
			if st.wake == nil {
				st.wake = make(chan struct{}, 1)
			}
		} else {
			st.writing = false
		}
		return outgoing{}, false, nil
	}
	return outgoing{msgs: msgs}, false, nil
}

// outgoing is what the writer writes next: a control frame, or messages
// (in the writer's st.out), or nothing.
type outgoing struct {
	ctrl *tetherv1.ConnectResponse
	msgs []broker.Entry
}

// send writes o: messages encoded by hand when frameCodec reads the stream
// (encode.go), or as proto frames.
func (st *stream) send(o outgoing) error {
	if o.ctrl != nil {
		if err := st.ss.Send(o.ctrl); err != nil {
			return err
		}
		st.srv.metrics.framesOut(o.ctrl)
		return nil
	}
	if st.prepares.Load() {
		if st.enc == nil {
			st.enc = &encoder{} // an idle stream holds none
		}
		if data, ok := st.enc.encodeMessages(o.msgs); ok {
			st.enc.prepared.data = data
			err := st.ss.SendMsg(&st.enc.prepared)
			st.enc.prepared.data = nil
			if err == nil {
				st.srv.metrics.messagesOut(len(o.msgs))
			}
			return err
		}
	}
	f := st.messageFrame(o.msgs)
	if err := st.ss.Send(f); err != nil {
		return err
	}
	st.srv.metrics.framesOut(f)
	return nil
}

func fillMessage(pm *tetherv1.ServerMessage, e broker.Entry) {
	m := e.Message
	pm.Seq = e.Seq
	pm.Topic = ""
	if m.Target.Kind == broker.KindTopic {
		pm.Topic = m.Target.Name
	}
	pm.Payload = m.Payload
	pm.ContentType = m.ContentType
	pm.Headers = m.Headers
	pm.CorrelationId = m.CorrelationID
	if m.SourceSession != "" || m.SourceClient != "" {
		if pm.Source == nil {
			pm.Source = &tetherv1.Source{}
		}
		pm.Source.SessionId, pm.Source.ClientId = m.SourceSession, m.SourceClient
	} else {
		pm.Source = nil
	}
	// Reused like the rest of the frame: timestamppb.New would allocate.
	if pm.PublishedAt == nil {
		pm.PublishedAt = &timestamppb.Timestamp{}
	}
	pm.PublishedAt.Seconds, pm.PublishedAt.Nanos = m.PublishedAt.Unix(), int32(m.PublishedAt.Nanosecond())
}

// writerLinger is how long a writer that sent messages waits for more
// before it exits. A stream that carries messages is likely to carry more
// soon, and waking a waiting writer costs less than starting one (a
// goroutine start, and its stack growing to Send's depth, each time). A
// writer that only answered a heartbeat or sent an ack exits at once, so
// an idle stream holds no writer.
const writerLinger = time.Second

// write runs the writer until nothing waits to be written (and, after
// messages, writerLinger passed without more) or the stream ends. It is
// the only caller of ss.Send: a writer is started only by the caller that
// claimed it (claimWriterLocked), and next releases it.
func (st *stream) write() {
	defer st.recoverWriter()
	syncer, _ := st.sess.log.(broker.Syncer)
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	// lastWrite, for the heartbeat's write-idle test, is stored every
	// 64 frames of a burst and at its end, not per frame: reading the
	// clock is a good part of a small frame's cost here.
	sent, messages := 0, false
	for !st.finished.Load() {
		o, end, err := st.next(messages)
		if end {
			st.sess.dropStream(st, err, "stream closed by the server")
			return
		}
		if o.ctrl == nil && len(o.msgs) == 0 {
			if sent%64 != 0 {
				st.lastWrite.Store(time.Now().UnixNano())
			}
			sent = 0
			if !messages {
				return // next released the writer
			}
			messages = false
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			if !st.lingerUntil(linger.C) {
				return
			}
			continue
		}
		if len(o.msgs) > 0 {
			messages = true
			seq := o.msgs[len(o.msgs)-1].Seq
			if !st.stored(syncer, seq) {
				return
			}
			storeMax(&st.sess.sentSeq, seq)
		}
		if err := st.send(o); err != nil {
			st.sess.dropStream(st, err, "send failed: "+err.Error())
			return
		}
		if sent++; sent%64 == 0 {
			st.lastWrite.Store(time.Now().UnixNano())
		}
	}
}

// recoverWriter ends the stream with INTERNAL when the writer panicked,
// instead of crashing the process.
func (st *stream) recoverWriter() {
	if p := recover(); p != nil {
		st.srv.cfg.logger.Error("tether: panic in a session writer", "panic", p, "stack", string(debug.Stack()))
		st.sess.dropStream(st, status.Error(codes.Internal, "internal error"), "internal error in the writer")
	}
}

// stored reports whether message seq may go out: with a broker.Syncer,
// only what is stored does, so that what the client has survives this
// node. When storing failed it ends the stream and reports false.
func (st *stream) stored(syncer broker.Syncer, seq uint64) bool {
	if syncer == nil || seq <= st.synced {
		return true
	}
	hi := st.sess.appended.Load()
	if err := syncer.Sync(st.ss.Context()); err != nil {
		st.sess.dropStream(st, status.Errorf(codes.Unavailable, "storing messages failed: %v; resume, here or on another backend", err), "log append failed")
		return false
	}
	st.synced = max(hi, seq)
	return true
}

// lingerUntil waits, as a lingering writer, until frames are queued (true:
// write them) or expired fires with none (false: the writer was released)
// or the stream ends (false).
func (st *stream) lingerUntil(expired <-chan time.Time) bool {
	select {
	case <-st.wake:
		return true
	case <-st.done:
		return false
	case <-expired:
	}
	st.mu.Lock()
	if st.lingering {
		st.lingering, st.writing = false, false
		st.mu.Unlock()
		return false
	}
	st.mu.Unlock()
	// Frames came as the timer fired: whoever queued them cleared
	// lingering and put a wake-up in st.wake, under mu.
	select {
	case <-st.wake:
		return true
	case <-st.done:
		return false
	}
}

package server

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// startLiveness arms the stream's one timer. Reads and writes only store a
// timestamp; when the timer fires it looks at them and re-arms for the
// earliest of: the next ping (write-idle for an interval, and when the
// client pings, its ping half an interval late), the next missed heartbeat
// (half an interval late) and death (interval × misses + grace of
// silence, or the RTT-derived dead-after: see rtt.go).
func (st *stream) startLiveness(interval time.Duration, misses int, grace time.Duration, maxAgeAt time.Time) {
	st.maxAgeAt = maxAgeAt
	st.mu.Lock()
	st.interval = interval
	st.initRTTLocked(misses, grace)
	st.due = time.Now().Add(interval)
	for _, at := range []time.Time{maxAgeAt, st.expiresAt} {
		if !at.IsZero() {
			st.due = earliest(st.due, at)
		}
	}
	st.timer = time.AfterFunc(time.Until(st.due), st.tick)
	st.mu.Unlock()
}

// tick runs when the timer fires.
func (st *stream) tick() {
	defer st.srv.panicGuard("the heartbeat timer")
	now := time.Now()
	lastRead := time.Unix(0, st.lastRead.Load())
	if st.busy.Load() {
		lastRead = now // the server is handling the client's frame: its own time, not the client's silence
	}
	lastWrite := time.Unix(0, st.lastWrite.Load())
	silent := now.Sub(lastRead)
	if st.endIfDue(now, silent) {
		return
	}
	interval, _ := st.deadline()
	var missedNow int
	var ping *tetherv1.ConnectResponse
	st.mu.Lock()
	if st.finished.Load() {
		st.mu.Unlock()
		return
	}
	// The k-th heartbeat counts as missed once it is half an interval
	// late, so that a peer whose beats keep time never races this timer
	// into a false miss.
	if n := max(0, int((silent+interval/2)/interval)-1); n > st.missed {
		st.missed = n
		missedNow = n
	} else if n < st.missed {
		st.missed = n
	}
	pingDue := st.pingDueLocked(lastWrite)
	if !now.Before(pingDue) {
		st.pings++
		ping = &tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ping{Ping: &tetherv1.Ping{Id: st.pings, SentAt: timestamppb.New(now)}}}
		st.ctrl.push(ping)
		pingDue = now.Add(interval) // the ping is a write
	}
	st.rearmLocked(now, lastRead, pingDue)
	st.unlockAndWake()
	if ping != nil {
		st.srv.metrics.heartbeatsSent.Inc()
	}
	if missedNow > 0 {
		st.srv.metrics.heartbeatsMissed.Inc()
		st.sess.record(event{at: now, kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_HEARTBEAT_MISSED,
			detail: fmt.Sprintf("nothing received for %d × %v", missedNow, interval)})
	}
}

// endIfDue ends the stream, and reports true, when its client has been
// silent for its dead-after, its credentials expired or it reached its maximum
// age (then the client is asked to move).
func (st *stream) endIfDue(now time.Time, silent time.Duration) bool {
	interval, deadAfter := st.deadline()
	switch {
	case silent >= deadAfter:
		st.srv.metrics.deadPeers.Inc()
		st.srv.metrics.detection.Observe(silent.Seconds())
		msg := fmt.Sprintf("heartbeat timeout: nothing received for %v (interval %v, dead after %v); reconnect and resume", silent.Round(time.Millisecond), interval, deadAfter)
		st.sess.record(event{at: now, kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_HEARTBEAT_MISSED, detail: msg})
		st.heartbeatTimeout(msg)
	case !st.expiresAt.IsZero() && !now.Before(st.expiresAt):
		msg := fmt.Sprintf("credentials expired at %s: reconnect with fresh credentials and resume", st.expiresAt.UTC().Format(time.RFC3339))
		st.sess.record(event{at: now, kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: msg})
		st.sess.dropStream(st, status.Error(codes.Unauthenticated, msg), "credentials expired")
	case !st.maxAgeAt.IsZero() && !now.Before(st.maxAgeAt):
		st.sess.migrate(st)
	default:
		return false
	}
	return true
}

// heartbeatTimeout ends a stream whose client went silent: GoAway
// HEARTBEAT_TIMEOUT first (a client that is alive but was cut off from
// sending learns why), then DEADLINE_EXCEEDED once it is written (or after
// flushTimeout, to a client that does not read). The session detaches at
// once.
func (st *stream) heartbeatTimeout(msg string) {
	err := status.Error(codes.DeadlineExceeded, msg)
	s := st.sess
	s.mu.Lock()
	if s.st != st {
		s.mu.Unlock()
		st.finish(err)
		return
	}
	s.goAwayLocked(tetherv1.GoAwayReason_GO_AWAY_REASON_HEARTBEAT_TIMEOUT, msg, 0, err)
	s.detachLocked("heartbeat timeout")
	s.mu.Unlock()
}

// heartbeatLocked moves the timer past a heartbeat that came on time: a
// client's ping (ping set) or its pong to the server's. Otherwise the
// timer's next check would come half an interval after each beat, a
// wake-up of an idle server apart from the beat's own; the reader is awake
// for the beat anyway.
func (st *stream) heartbeatLocked(now time.Time, ping bool) {
	if ping {
		st.pingedAt = now
	}
	if st.timer == nil || st.finished.Load() {
		return
	}
	st.missed = 0
	st.rearmLocked(now, now, st.pingDueLocked(time.Unix(0, st.lastWrite.Load())))
}

// pingDueLocked is when the server pings next: when write-idle for an
// interval and, if the client drives the heartbeat (the SDK does), only
// once its ping is half an interval late (its ping and this timer would
// otherwise race every interval, and each time the timer won both sides
// would ping).
func (st *stream) pingDueLocked(lastWrite time.Time) time.Time {
	due := lastWrite.Add(st.interval)
	if !st.pingedAt.IsZero() {
		due = latest(due, st.pingedAt.Add(st.interval+st.interval/2))
	}
	return due
}

// rearmLocked sets the timer for the earliest of pingDue, death, the next
// missed heartbeat, max age and credential expiry.
func (st *stream) rearmLocked(now, lastRead, pingDue time.Time) {
	next := pingDue
	next = earliest(next, lastRead.Add(st.deadAfter))
	next = earliest(next, lastRead.Add(st.interval*time.Duration(st.missed+1)+st.interval/2))
	if !st.maxAgeAt.IsZero() {
		next = earliest(next, st.maxAgeAt)
	}
	if !st.expiresAt.IsZero() {
		next = earliest(next, st.expiresAt)
	}
	st.due = next
	st.timer.Reset(next.Sub(now))
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// noteReceived acks client message seq, which was handled or failed.
func (st *stream) noteReceived(seq uint64) {
	st.noteReceivedForce(seq, false)
}

// noteReceivedForce is noteReceived that, when force is set, acks again
// even what was acked before: the answer to a re-sent duplicate, whose
// sender evidently missed the earlier ack.
//
// An Ack queued and not yet written covers seq: acks coalesce while the
// writer is busy, which is what batches them under load (one Ack for
// hundreds of messages at full speed, BenchmarkPushC2S). Otherwise nothing
// else waits to be acked and the Ack is queued at once. So every message
// is acked as soon as the writer can, which is what ClientMessage.ack_now
// asks: a sender that waits for each message (SendWait, Request) pays no
// delay, and neither does one that does not set ack_now (a stub, grpcurl).
//
// The timer that held acks back for up to 20 ms to batch them at lower
// rates was measured and dropped: at 2,000 messages/s on one stream it
// saved about 6 % of the CPU per message, within the noise of the run, and
// it cost every waiting sender without ack_now the whole delay.
func (st *stream) noteReceivedForce(seq uint64, force bool) {
	seq = min(seq, st.ackCap()) // see marks.go
	st.mu.Lock()
	if force && st.pendingAck == nil && seq <= st.ackedIn.Load() {
		st.ackedIn.Store(seq - 1)
	}
	if st.pendingAck != nil {
		seq = max(seq, st.pendingAck.Seq)
		st.pendingAck.Seq = seq // not yet written: acks coalesce
		st.ackedIn.Store(seq)
		st.mu.Unlock()
		return
	}
	st.queueAckLocked()
	st.unlockAndWake()
}

// queueAckLocked queues an Ack of everything received so far whose key is
// stored (see marks.go).
func (st *stream) queueAckLocked() {
	seq := min(st.sess.receivedSeq(), st.ackCap())
	if seq <= st.ackedIn.Load() {
		return
	}
	st.ackedIn.Store(seq)
	st.pendingAck = &tetherv1.Ack{Seq: seq}
	st.ctrl.push(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Ack{Ack: st.pendingAck}})
}

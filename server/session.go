package server

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// maxResendSeq bounds the seqs at which a fresh session may receive
// re-sends from an earlier one, whose generated idempotency keys are
// checked (see tetherv1.ClientMessage.generated_key).
const maxResendSeq = 4096

// keyRing is how many generated keys of handled messages a session keeps,
// newest first, for the case its stream ends before their ack reached the
// client: the messages a few of the server's Acks cover under load (acks
// coalesce while the writer is busy), and then some.
const keyRing = 128

// maxRequests is how many received requests (correlation id → requesting
// session) a session remembers for replies.
const maxRequests = 1024

// Session is one logical client session. It outlives its streams for the
// resume window. Its methods are safe for concurrent use.
type Session struct {
	srv       *Server
	id        string
	clientID  string
	principal string
	metadata  map[string]string
	created   time.Time
	log       broker.Log
	sentSeq   atomic.Uint64 // highest seq handed to a stream
	appended  atomic.Uint64 // highest seq appended to the log
	inSeq     atomic.Uint64 // highest client seq received; written by the reader
	// inStale is set on a session adopted from another node: its inSeq is
	// as of the last record, so the client's next message may skip ahead
	// past what the previous node received and acknowledged.
	inStale atomic.Bool
	// inCheck is set on a session adopted from another node: the keys of
	// its client's messages are checked until one is found unrecorded,
	// and maxPipelined more (checkUntil, set then), after which none of
	// the later ones can have been handled before (see inboundKey).
	inCheck    atomic.Bool
	checkUntil atomic.Uint64

	recvMu sync.Mutex               // serialises inbound frames: one stream's at a time
	pipe   atomic.Pointer[inflight] // messages in the broker's pipeline (pipeline.go); nil until one is pipelined

	mu        sync.Mutex
	tokenHash []byte
	heldHash  []byte  // the token the client last presented (see broker.SessionRecord.HeldTokenHash)
	st        *stream // nil while detached
	state     state   // changed only by transitionLocked (lifecycle.go)
	resumed   bool
	// resends is set on a session opened for a Hello whose resume failed:
	// its first messages may be re-sends of the old session's, whose
	// generated keys are checked (see inboundKey). Set before its reader
	// starts.
	resends        bool
	resumes        int32
	endedAt        time.Time // when it ended; written once, under srv.mu too (keepEndedLocked), and read under srv.mu
	post           []func()  // broker I/O to run once mu is unlocked (see unlock)
	recVer         uint64    // version of the latest registry record built (see putRecord)
	topics         map[string]struct{}
	outSeq         uint64 // highest seq assigned
	ackedOut       uint64 // highest seq the client acknowledged
	lost           seqRange
	expiry         *time.Timer
	resumeDeadline time.Time
	connectedAt    time.Time
	peer           string
	interval       time.Duration
	lastRTT        time.Duration
	rec            recorder
	requests       map[string]string // correlation id → requesting session id ("" when ambiguous)
	requestOrder   []string          // ring of keys in requests, oldest at requestNext
	requestNext    int
	keys           []string // ring of generated keys of recent messages (see noteKey)
	keyNext        int
	received       recent // dedupe keys of the messages queued to the session

	// adoption, on a session taken over from another node, tells when the
	// takeover is done: a resume that finds the session meanwhile waits
	// for it (awaitAdoption). nil on any other session.
	adoption *adoption

	// The messages in the log (seq > max(ackedOut, lost.Last)), oldest
	// first, and their payload bytes; guarded by mu (see overflow.go).
	held      queue[sized]
	heldBytes int

	putMu  sync.Mutex // serialises registry puts; never held with mu
	putVer uint64     // version of the latest record stored; guarded by putMu

	cb callbacks // the Handler's calls (see callbacks)

	susp suspendState // Suspend (suspend.go); guarded by mu

	// Client-id takeover with inheritance (inherit.go).
	heir       *Session           // the session that took this one's client id and messages; guarded by mu
	handedOver chan struct{}      // closed once this session inherited; nil if it inherited nothing
	tookOver   *tetherv1.TakeOver // what Welcome.took_over reports; set before the session is shared
	heirAway   string             // the session on another node that took this one's client id (see bequeath); guarded by mu
}

// unlock unlocks mu and then runs the broker I/O queued while it was held
// (record puts, remembered keys): no broker call waits under mu.
func (s *Session) unlock() {
	post := s.post
	s.post = nil
	s.mu.Unlock()
	for _, f := range post {
		f()
	}
}

// afterUnlockLocked queues f to run once mu is unlocked (see unlock).
func (s *Session) afterUnlockLocked(f func()) { s.post = append(s.post, f) }

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// ClientID returns the client id from Hello ("" when anonymous).
func (s *Session) ClientID() string { return s.clientID }

// Principal returns the authenticated principal the session is bound to.
func (s *Session) Principal() string { return s.principal }

// Metadata returns a copy of the metadata from Hello.
func (s *Session) Metadata() map[string]string { return maps.Clone(s.metadata) }

// Resumed reports whether the current stream resumed the session.
func (s *Session) Resumed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumed
}

// Topics returns the session's subscriptions, sorted.
func (s *Session) Topics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.topics))
}

// Send delivers a message to this session and reports whether it was
// queued (false once the session has ended). Pass WithCorrelationID to
// answer a request the session sent.
func (s *Session) Send(ctx context.Context, payload []byte, opts ...PublishOption) (bool, error) {
	n, err := s.srv.Publish(ctx, broker.Session(s.id), payload, "", opts...)
	return n > 0, err
}

// Forward publishes m as sent by this session, to m.Target, and returns
// how many sessions it reached.
func (s *Session) Forward(ctx context.Context, m *Message) (int, error) {
	return s.srv.publish(ctx, &broker.Message{
		Target:        m.Target,
		Payload:       m.Payload,
		ContentType:   m.ContentType,
		Headers:       m.Headers,
		CorrelationID: m.CorrelationID,
		SourceSession: s.id,
		SourceClient:  s.clientID,
		DedupeKey:     dedupeKey(s.dedupeScope(), m.IdempotencyKey),
	})
}

// dedupeKey is a message's broker.Message.DedupeKey: its idempotency key
// within its sender's scope.
func dedupeKey(scope, key string) string {
	if key == "" {
		return ""
	}
	return scope + "\x00" + key
}

// ReplyTo sends a reply to the session whose request with this correlation
// id was delivered to s, and returns how many sessions it reached (0 when
// the requester is gone). It returns a NOT_FOUND status when s received no
// such request, or forgot it (s remembers its 1024 most recent requests),
// and FAILED_PRECONDITION when requests from several sessions carried the
// same correlation id: the reply would be ambiguous, so it must name the
// requester (the request's source session) as its target instead.
func (s *Session) ReplyTo(ctx context.Context, correlationID string, payload []byte, contentType string, headers map[string]string) (int, error) {
	s.mu.Lock()
	src, ok := s.requests[correlationID]
	s.mu.Unlock()
	switch {
	case !ok:
		return 0, status.Errorf(codes.NotFound, "reply %q: %v", truncate(correlationID), ErrNoRequest)
	case src == "":
		return 0, status.Errorf(codes.FailedPrecondition, "reply %q: several sessions sent requests with this correlation id; reply to the request's source.session_id explicitly", truncate(correlationID))
	}
	return s.srv.publish(ctx, &broker.Message{
		Target:        broker.Session(src),
		Payload:       payload,
		ContentType:   contentType,
		Headers:       headers,
		CorrelationID: correlationID,
		SourceSession: s.id,
		SourceClient:  s.clientID,
	})
}

// enqueued is what became of a message handed to Session.enqueue.
type enqueued uint8

const (
	queued  enqueued = iota // logged and queued to the stream
	ended                   // the session has ended: not queued
	refused                 // the log is full and the message waits with its sender (OverflowBackpressure)
)

// enqueue assigns m the next seq, logs it and queues it to the stream.
// When the log is full the overflow policy applies (see overflowLocked):
// oneRecipient says that m has no other recipient, so that its sender can
// be told to retry instead.
func (s *Session) enqueue(m *broker.Message, oneRecipient bool) enqueued {
	s.mu.Lock()
	if h := s.heir; h != nil {
		s.mu.Unlock()
		return s.forward(h, m, oneRecipient)
	}
	defer s.unlock()
	if s.state.ended() {
		return ended
	}
	direct := m.DedupeKey != "" && m.Target.Kind != broker.KindTopic
	now := time.Now()
	if direct && s.received.has(m.DedupeKey, now, s.srv.cfg.dedupeWindow) {
		s.srv.metrics.dedupeDrops.Inc()
		return queued // queued before: the sender re-sent it
	}
	size := len(m.Payload)
	if s.fullLocked(size) && !s.overflowLocked(size, oneRecipient) {
		return refused
	}
	s.outSeq++
	e := broker.Entry{Seq: s.outSeq, Message: m}
	// The session bounds the log (fullLocked): the log's own capacity
	// only ever drops entries acknowledged and not yet trimmed (ack trims
	// outside mu).
	if _, err := s.log.Append(context.Background(), e, s.srv.cfg.maxOutboundQueue); err != nil {
		s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_ERROR, detail: "outbound log: " + err.Error()})
		s.srv.cfg.logger.Error("tether: outbound log append failed", "session", s.id, "err", err)
		s.outSeq--
		return ended
	}
	s.holdLocked(e.Seq, size)
	s.appended.Store(s.outSeq)
	s.countSuspendedLocked()
	if direct {
		// Only now: a message whose append failed was not queued, and
		// its re-send must be.
		s.received.add(m.DedupeKey, now, s.srv.cfg.dedupeWindow, s.srv.keep(now))
	}
	if m.CorrelationID != "" && m.SourceSession != "" && m.SourceSession != s.id {
		s.rememberRequestLocked(m.CorrelationID, m.SourceSession)
	}
	if s.st != nil {
		s.st.pushData(e)
	}
	return queued
}

func (s *Session) rememberRequestLocked(corr, src string) {
	if s.requests == nil {
		s.requests = make(map[string]string)
		s.requestOrder = make([]string, 0, 16)
	}
	if _, ok := s.requests[corr]; !ok {
		if len(s.requestOrder) < maxRequests {
			s.requestOrder = append(s.requestOrder, corr)
		} else {
			delete(s.requests, s.requestOrder[s.requestNext])
			s.requestOrder[s.requestNext] = corr
			s.requestNext = (s.requestNext + 1) % maxRequests
		}
	}
	if prev, ok := s.requests[corr]; ok && prev != src {
		// Two requesters chose the same id: a reply by correlation id alone
		// could reach the wrong one, so it is refused (ReplyTo).
		src = ""
	}
	s.requests[corr] = src
}

// goAwayLocked queues a GoAway on the current stream and ends it with err
// once the GoAway is written.
func (s *Session) goAwayLocked(reason tetherv1.GoAwayReason, msg string, retryAfter time.Duration, err error) {
	st := s.st
	if st == nil {
		return
	}
	s.rec.add(event{at: time.Now(), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_GO_AWAY, detail: reason.String() + ": " + msg})
	s.srv.metrics.goAways.WithLabelValues(reasonLabel(reason)).Inc()
	st.pushCtrl(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_GoAway{GoAway: &tetherv1.GoAway{
		Reason:      reason,
		Message:     msg,
		RetryAfter:  durationpb.New(retryAfter),
		RetryJitter: durationpb.New(s.srv.cfg.retryJitter),
	}}})
	st.closeAfterFlush(err)
}

// noteKey keeps the generated idempotency key of a message just handled,
// among the session's keyRing latest: if the stream ends before the client
// got the message's ack, the client re-sends it, perhaps into a fresh
// session, which must find the key (see rememberKeysLocked).
func (s *Session) noteKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) < keyRing {
		s.keys = append(s.keys, key)
		return
	}
	s.keys[s.keyNext] = key
	s.keyNext = (s.keyNext + 1) % keyRing
}

// takeKeysLocked returns the kept keys and forgets them.
func (s *Session) takeKeysLocked() []string {
	keys := slices.Clone(s.keys)
	clear(s.keys)
	s.keys, s.keyNext = s.keys[:0], 0
	return keys
}

// rememberKeys records kept keys in the broker for the dedupe window, when
// the stream ends.
func (s *Session) rememberKeys(keys []string) {
	for _, k := range keys {
		_, _ = s.srv.broker.Seen(context.Background(), s.dedupeScope(), k, s.srv.cfg.dedupeWindow)
	}
}

// detachLocked separates the session from its stream and starts the resume
// window. The kept keys and the record are stored once mu is unlocked.
func (s *Session) detachLocked(why string) {
	if s.st == nil {
		return
	}
	if keys := s.takeKeysLocked(); len(keys) > 0 {
		s.afterUnlockLocked(func() { s.rememberKeys(keys) })
	}
	s.st.leaving.Store(true)
	s.st = nil
	window := s.resumeWindowLocked() // longer when suspended (suspend.go)
	s.resumeDeadline = time.Now().Add(window)
	s.transitionLocked(stateDetached, event{detail: why})
	s.expiry = time.AfterFunc(window, s.expire)
	s.putRecordLocked()
}

// dropStream detaches st (if it still carries s) and ends it with err.
func (s *Session) dropStream(st *stream, err error, why string) {
	s.mu.Lock()
	if s.st == st {
		s.detachLocked(why)
	}
	s.unlock()
	st.finish(err)
}

// expire ends a session whose resume window passed without a resume.
func (s *Session) expire() {
	defer s.srv.panicGuard("the resume-window timer")
	s.mu.Lock()
	if s.state != stateDetached || time.Now().Before(s.resumeDeadline) {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.srv.metrics.expired.Inc()
	s.end("resume window expired", false)
}

// close ends the session for good, with err for its stream, if any.
func (s *Session) close(err error, why string) {
	s.mu.Lock()
	st := s.st
	if st != nil {
		s.detachLocked(why)
	}
	s.unlock()
	// Ended before the stream is, so that a client that saw its stream end
	// finds the session gone.
	s.end(why, true)
	if st != nil {
		st.closeAfterFlush(err)
	}
}

// end removes the session from the node. closed marks it closed (a
// resume says CLOSED) rather than expired (EXPIRED). OnClose runs (see
// callbacks.end) once the session is gone.
func (s *Session) end(why string, closed bool) {
	s.mu.Lock()
	if !s.transitionLocked(stateClosed, event{detail: why}) {
		s.unlock()
		return
	}
	if s.expiry != nil {
		s.expiry.Stop()
	}
	topics := slices.Collect(maps.Keys(s.topics))
	rec, ver := s.recordLocked()
	rec.Closed = closed
	rec.Heir = s.heirAway
	if rec.Expires.IsZero() || closed {
		rec.Expires = time.Now()
	}
	srv := s.srv
	srv.mu.Lock()
	srv.unindexLocked(s, topics)
	srv.keepEndedLocked(s)
	srv.mu.Unlock()
	s.unlock()
	ctx := context.Background()
	s.unbind(ctx, topics)
	if rec.Heir == "" { // otherwise the heir reads the log, then deletes it
		_ = s.log.Delete(ctx)
	}
	// Keep a tombstone for one more window so a late resume learns why.
	if err := s.putRecord(rec, ver); err == nil {
		time.AfterFunc(srv.cfg.resumeWindow, func() { _ = srv.broker.DeleteSession(context.Background(), s.id) })
	}
	s.cb.end(s, why)
}

func (s *Session) unbind(ctx context.Context, topics []string) {
	b := s.srv.broker
	_ = b.Unbind(ctx, broker.Session(s.id))
	if s.clientID != "" {
		_ = b.Unbind(ctx, broker.Client(s.clientID))
	}
	for _, t := range topics {
		_ = b.Unbind(ctx, broker.Topic(t))
	}
}

// recordLocked returns the session's registry record and its version: a
// record built later has a higher one (see putRecord).
func (s *Session) recordLocked() (broker.SessionRecord, uint64) {
	rec := broker.SessionRecord{
		ID:            s.id,
		ClientID:      s.clientID,
		Principal:     s.principal,
		TokenHash:     s.tokenHash,
		HeldTokenHash: s.heldHash,
		Node:          s.srv.cfg.serverID,
		Topics:        slices.Sorted(maps.Keys(s.topics)),

		Metadata:    s.metadata,
		Created:     s.created,
		Interval:    s.interval,
		SentSeq:     s.outSeq,
		AckedSeq:    s.ackedOut,
		ReceivedSeq: s.inSeq.Load(),
	}
	if s.st == nil {
		rec.Expires = s.resumeDeadline
	}
	s.recVer++
	return rec, s.recVer
}

// putRecordLocked stores the session's record once mu is unlocked.
func (s *Session) putRecordLocked() {
	rec, ver := s.recordLocked()
	s.afterUnlockLocked(func() { _ = s.putRecord(rec, ver) })
}

// sealRecord waits for a record put in flight and stops any later one: a
// session that left this node belongs to the node it moved to, whose
// record a late put from here (a reader's detach that raced the move)
// would overwrite. release and leave call it before they return, as an
// eviction must leave nothing of the session writing here.
func (s *Session) sealRecord() {
	s.putMu.Lock()
	s.putVer = math.MaxUint64
	s.putMu.Unlock()
}

// putRecord stores rec, version ver, in the registry unless a newer
// version is stored already (or the record is sealed): puts run outside
// mu, so two may race, and the older must not overwrite the newer.
func (s *Session) putRecord(rec broker.SessionRecord, ver uint64) error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if ver <= s.putVer {
		return nil
	}
	if err := s.srv.broker.PutSession(context.Background(), rec); err != nil {
		s.srv.cfg.logger.Error("tether: storing the session record failed", "session", s.id, "err", err)
		return err
	}
	s.putVer = ver
	return nil
}

// ack handles the client's cumulative Ack: it releases the messages up to
// seq from the log and opens the stream's window for as many.
func (s *Session) ack(seq uint64) error {
	if seq > s.sentSeq.Load() {
		return status.Errorf(codes.InvalidArgument, "ack %d is beyond the highest seq sent (%d): ack only what you received", seq, s.sentSeq.Load())
	}
	s.mu.Lock()
	if seq <= s.ackedOut {
		s.mu.Unlock()
		return nil
	}
	s.ackedOut = seq
	s.releaseLocked(seq)
	if s.lost.Last <= seq {
		s.lost = seqRange{} // the client is past it
	}
	if s.st != nil {
		s.st.acked(seq)
	}
	s.mu.Unlock()
	// Outside mu: trims only ever remove more, so two racing trims leave
	// the log trimmed to the higher seq.
	if err := s.log.Trim(context.Background(), seq); err != nil {
		return status.Errorf(codes.Unavailable, "the server is shutting down (%v): reconnect and resume", err)
	}
	return nil
}

// subscribe adds topics, all or none; a topic already held is a no-op. An
// error is a *topicError naming the topic at fault.
func (s *Session) subscribe(topics []string) error {
	for _, t := range topics {
		if err := validTopic(t); err != nil {
			return &topicError{t, err}
		}
	}
	s.mu.Lock()
	if s.state.ended() {
		s.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "the session has ended")
	}
	var added []string
	seen := make(map[string]struct{}, min(len(topics), s.srv.cfg.maxTopics+1))
	for _, t := range topics {
		if _, ok := s.topics[t]; ok {
			continue
		}
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}
		added = append(added, t)
		if len(s.topics)+len(added) > s.srv.cfg.maxTopics {
			break // over the limit already: no need to look further
		}
	}
	if len(s.topics)+len(added) > s.srv.cfg.maxTopics {
		s.mu.Unlock()
		return &topicError{added[len(added)-1], status.Errorf(codes.InvalidArgument, "subscribing to more topics would exceed the limit of %d per session (Welcome.limits.max_topics)", s.srv.cfg.maxTopics)}
	}
	s.srv.mu.Lock()
	for _, t := range added {
		s.topics[t] = struct{}{}
		addTo(s.srv.topics, t, s)
	}
	s.srv.mu.Unlock()
	if len(added) > 0 { // a fresh session without topics: Welcome puts the record
		s.putRecordLocked()
	}
	s.unlock()
	for _, t := range added {
		if err := s.srv.broker.Bind(context.Background(), broker.Topic(t)); err != nil {
			s.unsubscribe(added) // all or none
			return &topicError{t, status.Errorf(codes.Unavailable, "subscribing to %q: %v", truncate(t), err)}
		}
	}
	return nil
}

// unsubscribe removes topics; a topic not held is a no-op.
func (s *Session) unsubscribe(topics []string) {
	s.mu.Lock()
	var removed []string
	s.srv.mu.Lock()
	for _, t := range topics {
		if _, ok := s.topics[t]; ok {
			delete(s.topics, t)
			removeFrom(s.srv.topics, t, s)
			removed = append(removed, t)
		}
	}
	s.srv.mu.Unlock()
	s.putRecordLocked()
	s.unlock()
	for _, t := range removed {
		_ = s.srv.broker.Unbind(context.Background(), broker.Topic(t))
	}
}

// info describes the session for AdminService.
func (s *Session) info() *tetherv1.SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := &tetherv1.SessionInfo{
		SessionId:         s.id,
		ClientId:          s.clientID,
		Principal:         s.principal,
		State:             s.adminStateLocked(),
		ServerId:          s.srv.cfg.serverID,
		Peer:              s.peer,
		CreatedAt:         timestamppb.New(s.created),
		ConnectedAt:       timestamppb.New(s.connectedAt),
		Topics:            slices.Sorted(maps.Keys(s.topics)),
		Metadata:          s.metadata,
		HeartbeatInterval: durationpb.New(s.interval),
		Resumes:           uint32(s.resumes),
		LastSentSeq:       s.sentSeq.Load(),
		LastAckedSeq:      s.ackedOut,
		LastReceivedSeq:   s.inSeq.Load(),
		Unacked:           uint32(s.outSeq - s.ackedOut),
	}
	if s.lastRTT > 0 {
		in.LastRtt = durationpb.New(s.lastRTT)
	}
	if s.state == stateDetached { // suspended too
		in.ResumeDeadline = timestamppb.New(s.resumeDeadline)
	}
	return in
}

// record adds an event to the flight recorder.
func (s *Session) record(e event) {
	s.mu.Lock()
	s.rec.add(e)
	if e.kind == tetherv1.SessionEventKind_SESSION_EVENT_KIND_RTT {
		s.lastRTT = e.rtt
	}
	s.mu.Unlock()
}

// receivedSeq returns the highest client seq received.
func (s *Session) receivedSeq() uint64 { return s.inSeq.Load() }

// storeMax raises a to v unless it is already higher.
func storeMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

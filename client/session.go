package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// State is where a Session is in its life.
type State int

// The session states.
const (
	// StateConnecting: the first connection attempt is under way.
	StateConnecting State = iota
	// StateConnected: a stream carries the session.
	StateConnected
	// StateReconnecting: the stream broke; the session is being resumed.
	StateReconnecting
	// StateClosed: the session ended for good (Close, or the server said
	// not to reconnect).
	StateClosed
)

// String returns "connecting", "connected", "reconnecting" or "closed".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// StateChange describes one state transition.
type StateChange struct {
	State State
	// Backend is the backend of the new stream (StateConnected) or of the
	// attempt that just failed (StateReconnecting).
	Backend string
	// ServerID and Heartbeat are the server's id and the granted heartbeat
	// interval (StateConnected).
	ServerID  string
	Heartbeat time.Duration
	// SessionID is the session's id (StateConnected and later).
	SessionID string
	// Resumed and ResumeStatus tell how the stream started (StateConnected).
	Resumed      bool
	ResumeStatus tetherv1.ResumeStatus
	// Lost is the seq range of server messages that will never arrive, when
	// the server's log overflowed while the session was away.
	Lost *tetherv1.SeqRange
	// Err is why the previous stream ended (StateReconnecting, StateClosed).
	Err error
	// Time is when it happened.
	Time time.Time
}

// Stats is a snapshot of a Session's health.
type Stats struct {
	State        State
	Backend      string
	SessionID    string
	RTT          time.Duration
	Reconnects   int
	LastError    error
	ResumeStatus tetherv1.ResumeStatus
	// Unacked is how many sent messages wait for the server's ack, and
	// Queued how many wait to be written.
	Unacked, Queued int
}

// Message is a business message, sent or received.
type Message struct {
	// Where a sent message goes: exactly one of Topic, SessionID and
	// ClientID, or none for a reply (then CorrelationID is required). On a
	// received message Topic is the topic it was published to, if any.
	Topic     string
	SessionID string
	ClientID  string
	// Payload is opaque to tether.
	Payload []byte
	// ContentType and Headers are passed through.
	ContentType string
	Headers     map[string]string
	// CorrelationID links a request and its reply.
	CorrelationID string
	// IdempotencyKey dedupes re-sends on the server, across streams and
	// nodes. With a client id (WithClientID), Send generates one when it
	// is empty.
	IdempotencyKey string

	// Seq, Source and PublishedAt are set on received messages.
	Seq           uint64
	SourceSession string
	SourceClient  string
	PublishedAt   time.Time

	epoch uint32 // which fresh session received it
}

// Errors callers branch on.
var (
	// ErrClosed is returned by every method after Close, or after the
	// server ended the session for good.
	ErrClosed = errors.New("tether/client: session closed")
	// ErrBufferFull is returned by Send under the FailFast policy when the
	// send buffer is full.
	ErrBufferFull = errors.New("tether/client: send buffer full: wait for acks or raise WithSendBuffer")
	// ErrDropped is returned by SendWait when the DropOldest policy
	// dropped the message before it was written.
	ErrDropped = errors.New("tether/client: message dropped from the full send buffer (DropOldest policy)")
	// ErrTooLarge is returned by Send for a payload above the server's
	// Welcome.limits.max_message_bytes.
	ErrTooLarge = errors.New("tether/client: payload too large for the server: split it")
)

// Session is one logical tether session that lives across any number of
// streams, backends and networks. It connects lazily, on the first call of
// Connect, Send, SendWait, Request, Receive or Subscribe. All methods are
// safe for concurrent use.
type Session struct {
	cfg      *config
	backends *backends
	metrics  *metrics
	events   dispatcher

	startOnce sync.Once
	reconnect chan struct{}   // Reconnect asks the loop to drop the stream
	closeCtx  context.Context // ended by Close
	closeFn   context.CancelFunc
	closing   <-chan struct{} // closeCtx.Done()
	done      chan struct{}   // closed when the loop has ended

	mu        sync.Mutex
	state     State
	stateCh   chan State // latest-value channel
	connected chan struct{}
	sessionID string
	token     string
	tried     string   // backend of the latest attempt
	home      *backend // backend of the latest stream: where the session lives
	anywhere  bool     // the session resumes on any backend (Welcome.resume_anywhere)
	topics    map[string]struct{}
	stats     Stats
	closeErr  error

	out    outbox
	in     inbox
	limits atomic.Pointer[tetherv1.Limits] // from the latest Welcome

	waiters map[string]chan *Message // Request correlation id → reply
}

// New validates opts and returns a Session. It does no I/O.
func New(opts ...Option) (*Session, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Session{
		cfg:       cfg,
		reconnect: make(chan struct{}, 1),
		done:      make(chan struct{}),
		stateCh:   make(chan State, 1),
		connected: make(chan struct{}),
		topics:    make(map[string]struct{}),
		waiters:   make(map[string]chan *Message),
	}
	s.closeCtx, s.closeFn = context.WithCancel(context.Background())
	s.closing = s.closeCtx.Done()
	s.stateCh <- StateConnecting
	for _, t := range cfg.topics {
		s.topics[t] = struct{}{}
	}
	s.out.init(cfg.sendBuffer, cfg.fullPolicy)
	s.in.init()
	if s.metrics, err = newMetrics(cfg.registerer); err != nil {
		return nil, err
	}
	s.backends = newBackends(cfg)
	return s, nil
}

func (s *Session) start() {
	s.startOnce.Do(func() {
		if f := s.cfg.onState; f != nil {
			c := StateChange{State: StateConnecting, Time: time.Now()}
			s.events.push(func() { f(c) })
		}
		go s.run()
	})
}

// Connect starts the session, if it has not started, and waits until a
// stream carries it or ctx ends.
func (s *Session) Connect(ctx context.Context) error {
	s.start()
	s.mu.Lock()
	ch := s.connected
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-s.done:
		return s.errClosed()
	case <-ctx.Done():
		if last := s.Stats().LastError; last != nil {
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
		}
		return ctx.Err()
	}
}

// State returns the current state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// States returns a channel that holds the latest state: a reader that
// falls behind sees the newest state, never a stale queue. Use WithOnState
// to see every transition.
func (s *Session) States() <-chan State { return s.stateCh }

// Stats returns a snapshot of the session's health.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	st.State, st.SessionID = s.state, s.sessionID
	s.mu.Unlock()
	st.Unacked, st.Queued = s.out.counts()
	return st
}

// Reconnect drops the current stream and resumes on a healthy backend at
// once, without backoff: call it when the application knows the network
// changed (Wi-Fi to cellular, VPN up).
func (s *Session) Reconnect() {
	s.start()
	select {
	case s.reconnect <- struct{}{}:
	default:
	}
}

// Close ends the session for good. When connected, it first waits (up to
// 5 seconds) until the server has acked what Send accepted, then says
// goodbye, so the server forgets the session; it stops reconnecting and
// fails pending calls with ErrClosed. It waits until the session's
// goroutines and queued callbacks are done, or ctx ends. Close may be
// called from a callback; it then does not wait for callbacks.
func (s *Session) Close(ctx context.Context) error {
	s.closeFn()
	s.startOnce.Do(func() { // never started: nothing to stop
		s.finish(nil)
		s.backends.close()
		close(s.done)
	})
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.events.wait(ctx)
}

func (s *Session) errClosed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr != nil {
		return errors.Join(ErrClosed, s.closeErr)
	}
	return ErrClosed
}

// setState records a transition and publishes it.
func (s *Session) setState(c StateChange) {
	c.Time = time.Now()
	s.mu.Lock()
	if s.state == StateClosed {
		s.mu.Unlock()
		return
	}
	s.state = c.State
	switch c.State {
	case StateConnected:
		c.SessionID = s.sessionID
		s.stats.Backend, s.stats.ResumeStatus = c.Backend, c.ResumeStatus
		select {
		case <-s.connected:
		default:
			close(s.connected)
		}
	case StateReconnecting:
		s.stats.Reconnects++
		s.stats.LastError = c.Err
		s.connected = make(chan struct{})
		c.SessionID = s.sessionID
	case StateClosed:
		s.closeErr = c.Err
		s.connected = make(chan struct{}) // Connect now reports the close
		c.SessionID = s.sessionID
	}
	select {
	case <-s.stateCh:
	default:
	}
	s.stateCh <- c.State
	s.mu.Unlock()
	s.metrics.state(c.State)
	if f := s.cfg.onState; f != nil {
		s.events.push(func() { f(c) })
	}
	s.cfg.logger.Info("tether: session "+c.State.String(), "backend", c.Backend, "session", c.SessionID, "err", c.Err)
}

// Subscribe adds topics to the session; they are kept across resumes and
// re-sent in Hello when a fresh session has to be opened.
func (s *Session) Subscribe(ctx context.Context, topics ...string) error {
	for _, t := range topics {
		if err := validTopic(t); err != nil {
			return err
		}
	}
	s.start()
	s.mu.Lock()
	for _, t := range topics {
		s.topics[t] = struct{}{}
	}
	s.mu.Unlock()
	return s.control(ctx, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: topics}}})
}

// Unsubscribe removes topics from the session.
func (s *Session) Unsubscribe(ctx context.Context, topics ...string) error {
	s.start()
	s.mu.Lock()
	for _, t := range topics {
		delete(s.topics, t)
	}
	s.mu.Unlock()
	return s.control(ctx, &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Unsubscribe{Unsubscribe: &tetherv1.Unsubscribe{Topics: topics}}})
}

// control sends a control frame on the current stream; if there is none,
// the next Hello carries the change (topics are part of it).
func (s *Session) control(ctx context.Context, f *tetherv1.ConnectRequest) error {
	select {
	case <-s.done:
		return s.errClosed()
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	if c := s.current(); c != nil {
		c.pushCtrl(f)
	}
	return nil
}

func (s *Session) current() *conn {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.conn
}

// Send queues m for the server and returns once it is queued (not
// delivered): it is written as soon as a stream carries the session, and
// re-sent after a resume until the server acks it. When the send buffer is
// full, the policy chosen with WithSendBuffer applies. The session keeps
// m.Payload and m.Headers until the ack: do not change them after Send.
// Re-sends are deduplicated by idempotency key within the client id (see
// WithClientID); without a client id, only within one session.
func (s *Session) Send(ctx context.Context, m Message) error {
	_, err := s.enqueue(ctx, m)
	return err
}

// SendWait is Send that also waits for the server's ack: the server has
// the message (at least once, and deduplicated, so effectively once).
func (s *Session) SendWait(ctx context.Context, m Message) error {
	p, err := s.enqueue(ctx, m)
	if err != nil {
		return err
	}
	select {
	case <-p.acked:
		return p.err
	case <-s.done:
		return s.errClosed()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Session) enqueue(ctx context.Context, m Message) (*pending, error) {
	if err := validOutgoing(m); err != nil {
		return nil, err
	}
	if l := s.limits.Load(); l != nil && l.GetMaxMessageBytes() > 0 && len(m.Payload) > int(l.GetMaxMessageBytes()) {
		return nil, fmt.Errorf("%w: %d bytes, the server allows %d", ErrTooLarge, len(m.Payload), l.GetMaxMessageBytes())
	}
	s.start()
	if m.IdempotencyKey == "" && s.cfg.clientID != "" {
		// Within a session, seqs drop re-sends; a key matters only for a
		// re-send into a fresh session, which the server dedupes by key
		// within the client id. Without a client id there is no such
		// scope, and a key would only cost the server memory.
		m.IdempotencyKey = randomID()
	}
	return s.out.push(ctx, m, s.done)
}

// Request sends m as a request (with a fresh correlation id unless m has
// one) and waits for the correlated reply.
func (s *Session) Request(ctx context.Context, m Message) (*Message, error) {
	if m.CorrelationID == "" {
		m.CorrelationID = randomID()
	}
	ch := make(chan *Message, 1)
	s.mu.Lock()
	s.waiters[m.CorrelationID] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, m.CorrelationID)
		s.mu.Unlock()
	}()
	if err := s.Send(ctx, m); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-s.done:
		return nil, s.errClosed()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reply answers a received request: a message with the request's
// correlation id and no target, which the server routes back to the
// requester.
func (s *Session) Reply(ctx context.Context, req *Message, payload []byte) error {
	if req.CorrelationID == "" {
		return errors.New("tether/client: the message has no correlation id: it is not a request")
	}
	return s.Send(ctx, Message{CorrelationID: req.CorrelationID, Payload: payload})
}

// Receive returns the next message, in order, each once. A message counts
// as received (and is acked to the server) when Receive returns it, so a
// slow reader loses nothing: the server keeps what is unacked, and if the
// reader falls further behind than the server's outbound queue
// (Welcome.limits.max_outbound_queue), the server cuts the stream and the
// session resumes and replays.
func (s *Session) Receive(ctx context.Context) (*Message, error) {
	s.start()
	return s.in.pop(ctx, s.done, s.errClosed)
}

// deliver routes an incoming message to a Request waiter or the inbox.
func (s *Session) deliver(m *Message) {
	if m.CorrelationID != "" {
		s.mu.Lock()
		ch, ok := s.waiters[m.CorrelationID]
		if ok {
			delete(s.waiters, m.CorrelationID)
		}
		s.mu.Unlock()
		if ok {
			ch <- m
			s.in.consumed(m.Seq)
			return
		}
	}
	s.in.push(m)
}

func validOutgoing(m Message) error {
	n := 0
	for _, t := range []string{m.Topic, m.SessionID, m.ClientID} {
		if t != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("tether/client: set at most one of Topic, SessionID and ClientID")
	case n == 0 && m.CorrelationID == "":
		return errors.New("tether/client: no target: set Topic, SessionID or ClientID, or CorrelationID for a reply")
	case m.Topic != "":
		if err := validTopic(m.Topic); err != nil {
			return err
		}
	}
	// The wire requires UTF-8 in every string field: a message that cannot
	// be encoded would break the stream, and be re-sent after each resume.
	for name, v := range map[string]string{"SessionID": m.SessionID, "ClientID": m.ClientID, "ContentType": m.ContentType,
		"CorrelationID": m.CorrelationID, "IdempotencyKey": m.IdempotencyKey} {
		if !utf8.ValidString(v) {
			return fmt.Errorf("tether/client: %s is not valid UTF-8: use strings.ToValidUTF8, or carry binary data in the payload", name)
		}
	}
	for k, v := range m.Headers {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("tether/client: header %q is not valid UTF-8: use strings.ToValidUTF8, or carry binary data in the payload", strings.ToValidUTF8(k, "?"))
		}
	}
	return nil
}

// validTopic applies the server's rule (a topic is 1 to 256 bytes of UTF-8
// without spaces or control characters) before a bad name can end a
// stream.
func validTopic(t string) error {
	if t == "" || len(t) > 256 || !utf8.ValidString(t) {
		return fmt.Errorf("tether/client: topic %q: a topic is 1 to 256 bytes of UTF-8", t)
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("tether/client: topic %q: a topic may not contain spaces or control characters", t)
		}
	}
	return nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand doc)
	return base64.RawURLEncoding.EncodeToString(b)
}

package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// The fuzz targets in this file drive the Connect handler frame by frame
// through a fake stream (fzConn), one fresh server per input, and hold every
// outcome to a small model of the protocol in frames.proto: the exact status
// a stream ends with, the Error, Ack, Pong and message frames it receives,
// and the session state left behind. After every input the server's
// invariants are checked (fzHarness.checkInvariants): a session's last acked
// seq never exceeds its last sent seq, its topics are valid, within the limit
// and indexed, and no session is left attached to a stream whose handler
// returned.
//
// Strings the server relays to other clients (headers, content type,
// correlation id) are made valid UTF-8 first: on the wire gRPC refuses
// invalid UTF-8 before the handler runs (see TestHostileInputs for what the
// client sees then). Everything the server only validates (topics, targets,
// ids, tokens, idempotency keys) is fuzzed raw.

// fzBound bounds every wait: the handler returns, and each expected frame
// arrives, within it.
const fzBound = 10 * time.Second

type fzPrincipalKey struct{}

func fzPrincipalOf(ctx context.Context) string {
	p, _ := ctx.Value(fzPrincipalKey{}).(string)
	return p
}

// fzConn is one Connect call with a fake transport: frames go in through
// send, one at a time; what the server sends is kept in out, marshalled and
// unmarshalled as on the wire.
type fzConn struct {
	grpc.ServerStream
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	in     chan *tetherv1.ConnectRequest
	done   chan struct{} // closed when the handler returned
	err    error         // the handler's result, valid once done is closed

	mu      sync.Mutex
	out     []*tetherv1.ConnectResponse
	changed chan struct{}
}

func (c *fzConn) Context() context.Context { return c.ctx }

func (c *fzConn) Recv() (*tetherv1.ConnectRequest, error) {
	select {
	case f := <-c.in:
		return f, nil
	case <-c.ctx.Done():
		return nil, status.Error(codes.Canceled, "client went away")
	}
}

func (c *fzConn) Send(f *tetherv1.ConnectResponse) error {
	b, err := proto.Marshal(f)
	if err != nil { // what grpc-go's SendMsg reports
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	g := &tetherv1.ConnectResponse{}
	if err := proto.Unmarshal(b, g); err != nil {
		return status.Errorf(codes.Internal, "unmarshal: %v", err)
	}
	c.mu.Lock()
	c.out = append(c.out, g)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

// send hands f to the server's reader and reports false if the stream had
// ended. When it returns true, every earlier frame has been handled.
func (c *fzConn) send(f *tetherv1.ConnectRequest) bool {
	c.t.Helper()
	select {
	case <-c.done:
		return false
	default:
	}
	timer := time.NewTimer(fzBound)
	defer timer.Stop()
	select {
	case c.in <- f:
		return true
	case <-c.done:
		return false
	case <-timer.C:
		c.t.Fatalf("the server did not read a frame within %v", fzBound)
		return false
	}
}

// sync returns once every frame sent so far has been handled (an empty Pong
// is a no-op for the server).
func (c *fzConn) sync() bool {
	c.t.Helper()
	return c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{}}})
}

// await waits until cond holds for the frames received so far. It reports
// false if the stream ended without it.
func (c *fzConn) await(what string, cond func([]*tetherv1.ConnectResponse) bool) bool {
	c.t.Helper()
	timer := time.NewTimer(fzBound)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.out)
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.changed:
		case <-c.done:
			c.mu.Lock()
			defer c.mu.Unlock()
			return cond(c.out)
		case <-timer.C:
			c.t.Fatalf("no %s within %v", what, fzBound)
		}
	}
}

// mustAwait is await that fails the input when the stream ended first.
func (c *fzConn) mustAwait(what string, cond func([]*tetherv1.ConnectResponse) bool) {
	c.t.Helper()
	if !c.await(what, cond) {
		c.t.Fatalf("the stream ended (%v) before %s", c.end(), what)
	}
}

// end waits for the handler to return, within fzBound, and returns its
// result, which must be OK or a deliberate status.
func (c *fzConn) end() error {
	c.t.Helper()
	timer := time.NewTimer(fzBound)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		c.t.Fatalf("the Connect handler did not return within %v", fzBound)
	}
	switch status.Code(c.err) {
	case codes.Unknown, codes.Internal:
		c.t.Fatalf("the stream ended with %v", c.err)
	}
	return c.err
}

// expectEnd asserts the stream ends with code and a message containing sub.
func (c *fzConn) expectEnd(code codes.Code, sub string) {
	c.t.Helper()
	st := status.Convert(c.end())
	if st.Code() != code || !strings.Contains(st.Message(), sub) {
		c.t.Fatalf("the stream ended with %v %q; want %v containing %q", st.Code(), st.Message(), code, sub)
	}
}

// release makes the client go away, as a broken connection does, and
// asserts that the stream was alive until then.
func (c *fzConn) release() {
	c.t.Helper()
	c.cancel()
	if err := c.end(); status.Code(err) != codes.Canceled {
		c.t.Fatalf("the stream had ended with %v before the client went away", err)
	}
}

// frames returns a copy of the frames received so far.
func (c *fzConn) frames() []*tetherv1.ConnectResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.out)
}

// welcome waits for the first frame, which must be Welcome; nil when the
// stream ended without one.
func (c *fzConn) welcome() *tetherv1.Welcome {
	c.t.Helper()
	if !c.await("welcome", func(out []*tetherv1.ConnectResponse) bool { return len(out) > 0 }) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.out[0].GetWelcome()
	if w == nil {
		c.t.Fatalf("the first frame is %v, not welcome", c.out[0])
	}
	return w
}

// open sends h (with a one-minute heartbeat unless h asks otherwise) and
// returns the Welcome.
func (c *fzConn) open(h *tetherv1.Hello) *tetherv1.Welcome {
	c.t.Helper()
	if h.HeartbeatInterval == nil {
		h.HeartbeatInterval = durationpb.New(time.Minute)
	}
	c.send(fzHello(h))
	w := c.welcome()
	if w == nil {
		c.t.Fatalf("no welcome: the stream ended with %v", c.end())
	}
	return w
}

// fzHarness is one server and the streams of one fuzz input.
type fzHarness struct {
	t      *testing.T
	srv    *Server
	conns  []*fzConn
	panics fzPanics
}

// fzPanics records the panics the server recovers from and logs (in a
// reader, a writer or a timer), which would otherwise go unnoticed.
type fzPanics struct {
	mu    sync.Mutex
	first string
	n     int
}

func (p *fzPanics) Enabled(context.Context, slog.Level) bool { return true }
func (p *fzPanics) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *fzPanics) WithGroup(string) slog.Handler            { return p }

func (p *fzPanics) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "panic") {
		return nil
	}
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "panic" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		p.first = msg
	}
	p.n++
	return nil
}

func newFzHarness(t *testing.T, opts ...Option) *fzHarness {
	t.Helper()
	h := &fzHarness{t: t}
	srv, err := New(append([]Option{WithServerID("fuzz"), WithPrincipal(fzPrincipalOf), WithLogger(slog.New(&h.panics))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(h.close)
	return h
}

// dial starts a Connect call as principal.
func (h *fzHarness) dial(principal string) *fzConn {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), fzPrincipalKey{}, principal))
	c := &fzConn{t: h.t, ctx: ctx, cancel: cancel, in: make(chan *tetherv1.ConnectRequest),
		done: make(chan struct{}), changed: make(chan struct{}, 1)}
	go func() {
		c.err = (&service{srv: h.srv}).Connect(c)
		cancel() // as grpc does when the handler returns
		close(c.done)
	}()
	h.conns = append(h.conns, c)
	return c
}

// close ends every stream, checks that every handler returned and that the
// server holds no stream any more, then closes the server.
func (h *fzHarness) close() {
	for _, c := range h.conns {
		c.cancel()
	}
	for _, c := range h.conns {
		c.end()
	}
	h.checkInvariants()
	if n := h.srv.live.Load(); n != 0 {
		h.t.Errorf("%d streams still count as live after every handler returned", n)
	}
	_ = h.srv.Close()
	h.panics.mu.Lock()
	defer h.panics.mu.Unlock()
	if h.panics.n > 0 {
		h.t.Errorf("the server recovered %d panics; the first: %s", h.panics.n, h.panics.first)
	}
}

// session returns the session with id, or nil.
func (h *fzHarness) session(id string) *Session {
	h.srv.mu.RLock()
	defer h.srv.mu.RUnlock()
	return h.srv.sessions[id]
}

// checkInvariants checks every session on the server.
func (h *fzHarness) checkInvariants() {
	t, srv := h.t, h.srv
	t.Helper()
	srv.mu.RLock()
	sessions := slices.Collect(maps.Values(srv.sessions))
	onServer := make(map[*Session]bool, len(sessions))
	for _, s := range sessions {
		onServer[s] = true
	}
	byTopic := make(map[string][]*Session, len(srv.topics))
	for tp, set := range srv.topics {
		byTopic[tp] = collect(set)
	}
	byClient := make(map[string][]*Session, len(srv.byClient))
	for id, set := range srv.byClient {
		byClient[id] = collect(set)
	}
	srv.mu.RUnlock()
	ended := make(map[tetherv1.TetherService_ConnectServer]bool)
	for _, c := range h.conns {
		select {
		case <-c.done:
			ended[c] = true
		default:
		}
	}
	for _, s := range sessions {
		s.mu.Lock()
		acked, sent, assigned := s.ackedOut, s.sentSeq.Load(), s.outSeq
		topics := slices.Collect(maps.Keys(s.topics))
		st, state := s.st, s.state.proto()
		lostFirst, lostLast := s.lost.First, s.lost.Last
		s.mu.Unlock()
		if acked > sent {
			t.Errorf("session %s: last acked %d exceeds last sent %d", s.id, acked, sent)
		}
		if sent > assigned {
			t.Errorf("session %s: last sent %d exceeds the last seq assigned %d", s.id, sent, assigned)
		}
		if lostFirst > lostLast {
			t.Errorf("session %s: lost range %d..%d", s.id, lostFirst, lostLast)
		}
		if len(topics) > srv.cfg.maxTopics {
			t.Errorf("session %s holds %d topics; the limit is %d", s.id, len(topics), srv.cfg.maxTopics)
		}
		for _, tp := range topics {
			if !fzValidTopic(tp) {
				t.Errorf("session %s holds the invalid topic %q", s.id, tp)
			}
			if !slices.Contains(byTopic[tp], s) {
				t.Errorf("session %s holds topic %q but is not in its index", s.id, tp)
			}
		}
		if s.clientID != "" && !slices.Contains(byClient[s.clientID], s) {
			t.Errorf("session %s is not indexed under its client id %q", s.id, s.clientID)
		}
		switch {
		case state == tetherv1.SessionState_SESSION_STATE_CLOSED:
			t.Errorf("closed session %s is still on the server", s.id)
		case st != nil && state != tetherv1.SessionState_SESSION_STATE_CONNECTED:
			t.Errorf("session %s holds a stream in state %v", s.id, state)
		case st != nil && ended[st.ss]:
			t.Errorf("session %s is attached to a stream whose handler returned: it will never expire", s.id)
		}
	}
	for tp, set := range byTopic {
		for _, s := range set {
			s.mu.Lock()
			_, ok := s.topics[tp]
			s.mu.Unlock()
			if !ok || !onServer[s] {
				t.Errorf("the index of topic %q names session %s, which does not hold it", tp, s.id)
			}
		}
	}
}

func fzHello(h *tetherv1.Hello) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: h}}
}

func fzAck(seq uint64) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ack{Ack: &tetherv1.Ack{Seq: seq}}}
}

func fzMsg(m *tetherv1.ClientMessage) *tetherv1.ConnectRequest {
	return &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: m}}
}

func fzMessages(out []*tetherv1.ConnectResponse) []*tetherv1.ServerMessage {
	var ms []*tetherv1.ServerMessage
	for _, f := range out {
		if m := f.GetMessage(); m != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

func fzAcks(out []*tetherv1.ConnectResponse) []uint64 {
	var as []uint64
	for _, f := range out {
		if a := f.GetAck(); a != nil {
			as = append(as, a.GetSeq())
		}
	}
	return as
}

func fzErrors(out []*tetherv1.ConnectResponse) []*tetherv1.Error {
	var es []*tetherv1.Error
	for _, f := range out {
		if e := f.GetError(); e != nil {
			es = append(es, e)
		}
	}
	return es
}

// fzValidTopic is the topic rule of frames.proto: 1 to 256 bytes of UTF-8,
// without spaces (or control characters).
func fzValidTopic(t string) bool {
	if t == "" || len(t) > 256 || !utf8.ValidString(t) {
		return false
	}
	return !strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// fzTopicError is the message substring for an invalid topic.
func fzTopicError(t string) string {
	if t == "" || len(t) > 256 || !utf8.ValidString(t) {
		return "a topic is 1 to 256 bytes of UTF-8"
	}
	return "a topic may not contain spaces or control characters"
}

// fzWire makes s a string the wire can carry.
func fzWire(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// fzDetached opens a session as principal, has the server send it n
// messages and breaks its stream: the session waits for a resume.
func (h *fzHarness) fzDetached(principal string, hello *tetherv1.Hello, n int) *tetherv1.Welcome {
	h.t.Helper()
	c := h.dial(principal)
	w := c.open(hello)
	for i := range n {
		if _, err := h.srv.Publish(context.Background(), broker.Session(w.GetSessionId()), []byte{byte(i)}, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	c.mustAwait("the messages", func(out []*tetherv1.ConnectResponse) bool { return len(fzMessages(out)) == n })
	c.release()
	return w
}

// fzAwaitSeqs waits for the messages from..to, in order, after whatever
// came before them.
func fzAwaitSeqs(c *fzConn, from, to uint64) {
	c.t.Helper()
	if from > to {
		return
	}
	c.mustAwait(fmt.Sprintf("messages %d..%d", from, to), func(out []*tetherv1.ConnectResponse) bool {
		ms := fzMessages(out)
		return len(ms) > 0 && ms[len(ms)-1].GetSeq() >= to
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	want := from
	for _, m := range fzMessages(c.out) {
		if m.GetSeq() != want {
			c.t.Fatalf("got message seq %d, want %d (replay %d..%d)", m.GetSeq(), want, from, to)
		}
		want++
	}
	if want != to+1 {
		c.t.Fatalf("got messages up to %d, want %d..%d", want-1, from, to)
	}
}

// FuzzHello fuzzes every Hello field, resume included: a resume names a
// random session, or the one detached session on the server with a random
// token, or that session with its real token and a random
// last_received_seq, from its own principal or another. Validation must end
// the stream with INVALID_ARGUMENT naming a violated rule; anything valid
// gets a Welcome whose resume status, granted interval, topics and seqs
// follow the spec.
func FuzzHello(f *testing.F) {
	f.Add("dev-1", int64(30), int32(0), true, "a\nb", uint16(0), uint8(2), "k", uint8(0), "", "", uint64(0), true)
	f.Add("", int64(0), int32(0), false, "", uint16(0), uint8(0), "", uint8(3), "", "", uint64(2), true)
	f.Add("", int64(0), int32(0), false, "", uint16(0), uint8(0), "", uint8(3), "", "", uint64(4), true)
	f.Add("", int64(0), int32(0), false, "x", uint16(0), uint8(0), "", uint8(3), "", "", uint64(0), false)
	f.Add("", int64(0), int32(0), false, "", uint16(0), uint8(0), "", uint8(2), "", "AAAA", uint64(0), true)
	f.Add("", int64(0), int32(0), false, "", uint16(0), uint8(0), "", uint8(1), "no-such", "tok", uint64(math.MaxUint64), true)
	f.Add(strings.Repeat("c", 257), int64(0), int32(0), false, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(-1), int32(0), true, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(1), int32(-5), true, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(2_000_000_000), true, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(315576000001), int32(0), true, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(100_000_000), int32(0), true, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(1), true, "", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(0), false, "t\n", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(0), false, "a b", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(0), false, "\xff\xfe", uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(0), false, strings.Repeat("t", 257), uint16(0), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(0), false, "t", uint16(10000), uint8(0), "", uint8(0), "", "", uint64(0), true)
	f.Add("d", int64(0), int32(0), false, "t", uint16(16), uint8(65), "m", uint8(0), "", "", uint64(0), true)
	f.Add("orig", int64(0), int32(0), false, "", uint16(0), uint8(64), "m", uint8(2), "", "", uint64(0), true)
	f.Fuzz(func(t *testing.T, clientID string, hbSec int64, hbNanos int32, hbSet bool, topicList string, repeat uint16,
		nMeta uint8, metaKey string, mode uint8, sessionID, token string, last uint64, samePrincipal bool) {
		const maxTopics = 16
		h := newFzHarness(t, WithMaxTopics(maxTopics))
		// The session a resume may name: 3 messages sent, none acked.
		const sent = 3
		orig := h.fzDetached("p0", &tetherv1.Hello{ClientId: "orig", Topics: []string{"orig"}}, sent)

		hello := &tetherv1.Hello{ClientId: clientID}
		if topicList != "" {
			one := strings.Split(topicList, "\n")
			for range max(1, int(repeat)%20001) {
				if len(hello.Topics) >= 20000 {
					break
				}
				hello.Topics = append(hello.Topics, one...)
			}
		}
		if nMeta > 0 {
			hello.Metadata = make(map[string]string, nMeta)
			for i := range int(nMeta) {
				hello.Metadata[metaKey+strconv.Itoa(i)] = "v"
			}
		}
		if hbSet {
			hello.HeartbeatInterval = &durationpb.Duration{Seconds: hbSec, Nanos: hbNanos}
		}
		switch mode % 4 {
		case 1:
			hello.Resume = &tetherv1.Resume{SessionId: sessionID, ResumeToken: token, LastReceivedSeq: last}
		case 2:
			hello.Resume = &tetherv1.Resume{SessionId: orig.GetSessionId(), ResumeToken: token, LastReceivedSeq: last}
		case 3:
			hello.Resume = &tetherv1.Resume{SessionId: orig.GetSessionId(), ResumeToken: orig.GetResumeToken(), LastReceivedSeq: last}
		}
		principal := "p1"
		if samePrincipal {
			principal = "p0"
		}
		c := h.dial(principal)
		c.send(fzHello(hello))

		// Validation: any violated rule ends the stream.
		var violated []string
		if len(hello.GetClientId()) > 256 {
			violated = append(violated, "hello.client_id is longer than 256 bytes")
		}
		if !utf8.ValidString(hello.GetClientId()) {
			violated = append(violated, "hello.client_id is not valid UTF-8")
		}
		if n := len(hello.GetTopics()); n > maxTopics {
			violated = append(violated, fmt.Sprintf("hello.topics has %d topics; the limit is %d", n, maxTopics))
		}
		for _, tp := range hello.GetTopics() {
			if !fzValidTopic(tp) {
				violated = append(violated, fzTopicError(tp))
			}
		}
		if n := len(hello.GetMetadata()); n > 64 {
			violated = append(violated, fmt.Sprintf("hello.metadata has %d entries; the limit is 64", n))
		}
		if d := hello.GetHeartbeatInterval(); d != nil && (!d.IsValid() || d.AsDuration() < 0) {
			violated = append(violated, "hello.heartbeat_interval must be a valid, non-negative duration")
		}
		if len(violated) > 0 {
			st := status.Convert(c.end())
			if st.Code() != codes.InvalidArgument || !slices.ContainsFunc(violated, func(v string) bool { return strings.Contains(st.Message(), v) }) {
				t.Fatalf("the stream ended with %v %q; want INVALID_ARGUMENT for one of %q", st.Code(), st.Message(), violated)
			}
			return
		}

		// The resume outcome.
		want := tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED
		if r := hello.GetResume(); r.GetSessionId() != "" {
			switch {
			case r.GetSessionId() != orig.GetSessionId() || r.GetResumeToken() != orig.GetResumeToken():
				want = tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION
			case principal != "p0":
				want = tetherv1.ResumeStatus_RESUME_STATUS_PRINCIPAL_MISMATCH
			case r.GetLastReceivedSeq() > sent:
				want = tetherv1.ResumeStatus_RESUME_STATUS_SEQ_MISMATCH
			default:
				want = tetherv1.ResumeStatus_RESUME_STATUS_RESUMED
			}
		}
		if want != tetherv1.ResumeStatus_RESUME_STATUS_RESUMED && hello.GetClientId() == "orig" && principal != "p0" {
			// A fresh session may not take another principal's client id.
			st := status.Convert(c.end())
			if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "belongs to a session of another principal") {
				t.Fatalf("another principal's client id: the stream ended with %v %q; want PERMISSION_DENIED", st.Code(), st.Message())
			}
			return
		}
		w := c.welcome()
		if w == nil {
			t.Fatalf("a valid hello got no welcome: the stream ended with %v", c.end())
		}
		resumed := want == tetherv1.ResumeStatus_RESUME_STATUS_RESUMED
		if w.GetResumeStatus() != want || w.GetResumed() != resumed {
			t.Fatalf("welcome resume_status %v resumed %v; want %v", w.GetResumeStatus(), w.GetResumed(), want)
		}
		if w.GetResumeToken() == "" || w.GetResumeToken() == orig.GetResumeToken() {
			t.Fatalf("welcome resume_token %q: want a fresh one", w.GetResumeToken())
		}
		hb := h.srv.cfg.profile.Heartbeat
		interval := hb.Interval
		if d := hello.GetHeartbeatInterval().AsDuration(); d != 0 {
			interval = min(max(d, hb.Min), hb.Max)
		}
		wantTopics := slices.Compact(slices.Sorted(slices.Values(hello.GetTopics())))
		if resumed {
			// A resume keeps the session's topics, and its granted
			// interval unless Hello asks for another.
			if hello.GetHeartbeatInterval().AsDuration() == 0 {
				interval = orig.GetHeartbeatInterval().AsDuration()
			}
			wantTopics = []string{"orig"}
			if w.GetSessionId() != orig.GetSessionId() || w.GetLastSentSeq() != sent {
				t.Fatalf("resumed welcome: session %q last_sent_seq %d", w.GetSessionId(), w.GetLastSentSeq())
			}
			fzAwaitSeqs(c, hello.GetResume().GetLastReceivedSeq()+1, sent)
		} else if w.GetSessionId() == orig.GetSessionId() || w.GetLastSentSeq() != w.GetTookOver().GetInherited() || w.GetLastReceivedSeq() != 0 {
			t.Fatalf("fresh welcome: session %q last_sent_seq %d last_received_seq %d", w.GetSessionId(), w.GetLastSentSeq(), w.GetLastReceivedSeq())
		}
		if got := w.GetHeartbeatInterval().AsDuration(); got != interval {
			t.Fatalf("granted heartbeat interval %v; want %v", got, interval)
		}
		if got := w.GetDeadAfter().AsDuration(); got != interval*time.Duration(hb.Misses)+hb.Grace {
			t.Fatalf("dead_after %v for interval %v", got, interval)
		}
		if !slices.Equal(w.GetTopics(), wantTopics) {
			t.Fatalf("welcome topics %q; want %q", w.GetTopics(), wantTopics)
		}
		if w.GetLimits().GetMaxTopics() != maxTopics {
			t.Fatalf("welcome limits %v", w.GetLimits())
		}
		h.checkInvariants()
		c.release()
	})
}

// FuzzClientMessage fuzzes one ClientMessage (seq, target, payload size,
// headers, content type, correlation and idempotency keys) from a session
// "me" next to a session "peer", both subscribed to "t", then re-sends it
// (a duplicate seq) and sends it again under a new seq (a duplicate
// idempotency key). A frame that breaks a rule ends the stream; a message
// that cannot be routed gets a non-fatal Error frame; every handled message
// is acked; a duplicate is acked again and never delivered twice.
func FuzzClientMessage(f *testing.F) {
	f.Add(uint8(1), uint64(0), uint8(1), "t", uint16(10), uint16(2), "h", "text/plain", "", "")
	f.Add(uint8(0), uint64(0), uint8(3), "peer", uint16(0), uint16(0), "", "", "corr", "key-1")
	f.Add(uint8(0), uint64(0), uint8(4), "", uint16(1024), uint16(0), "", "", "", "k")
	f.Add(uint8(1), uint64(0), uint8(1), "t", uint16(1025), uint16(0), "", "", "", "")
	f.Add(uint8(2), uint64(2), uint8(1), "t", uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(2), uint64(math.MaxUint64), uint8(1), "t", uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(1), uint64(0), uint8(0), "", uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(1), uint64(0), uint8(0), "", uint16(0), uint16(0), "", "", "no-such-request", "k")
	f.Add(uint8(1), uint64(0), uint8(1), "has space", uint16(0), uint16(0), "", "", "", "k")
	f.Add(uint8(1), uint64(0), uint8(1), "\xff", uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(1), uint64(0), uint8(2), "", uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(1), uint64(0), uint8(3), strings.Repeat("c", 257), uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(1), uint64(0), uint8(3), "ghost", uint16(0), uint16(0), "", "", "", "")
	f.Add(uint8(1), uint64(0), uint8(3), "me", uint16(5), uint16(299), "\xffh", "\xc3", "\xe2\x82", "")
	f.Fuzz(func(t *testing.T, seqMode uint8, seq uint64, targetKind uint8, target string, payloadLen uint16,
		nHeaders uint16, header, contentType, corr, idem string) {
		const maxBytes = 1024
		h := newFzHarness(t, WithMaxMessageBytes(maxBytes))
		me := h.dial("")
		meID := me.open(&tetherv1.Hello{ClientId: "me", Topics: []string{"t"}}).GetSessionId()
		peer := h.dial("")
		peerID := peer.open(&tetherv1.Hello{ClientId: "peer", Topics: []string{"t"}}).GetSessionId()
		meS, peerS := h.session(meID), h.session(peerID)

		m := &tetherv1.ClientMessage{
			Payload:        bytes.Repeat([]byte{'p'}, int(payloadLen)%2100),
			ContentType:    fzWire(contentType),
			CorrelationId:  fzWire(corr),
			IdempotencyKey: idem,
		}
		if n := int(nHeaders) % 300; n > 0 {
			m.Headers = make(map[string]string, n)
			for i := range n {
				m.Headers[fzWire(header)+strconv.Itoa(i)] = fzWire(header)
			}
		}
		switch seqMode % 3 {
		case 1:
			m.Seq = 1
		case 2:
			m.Seq = seq
		}
		switch targetKind % 5 {
		case 1:
			m.Target = &tetherv1.ClientMessage_Topic{Topic: target}
		case 2:
			m.Target = &tetherv1.ClientMessage_SessionId{SessionId: target}
		case 3:
			m.Target = &tetherv1.ClientMessage_ClientId{ClientId: target}
		case 4:
			m.Target = &tetherv1.ClientMessage_SessionId{SessionId: peerID}
		}
		me.send(fzMsg(m))
		me.sync()

		// The rule that ends the stream.
		if eff := max(m.GetSeq(), 1); eff > 1 {
			me.expectEnd(codes.InvalidArgument, fmt.Sprintf("message seq %d skips ahead: expected 1", eff))
			return
		}
		// Rules that fail the message (an Error frame, then its ack).
		var failed *status.Status
		if len(m.GetPayload()) > maxBytes {
			failed = status.Newf(codes.InvalidArgument, "payload of %d bytes exceeds the limit of %d bytes (Welcome.limits.max_message_bytes)", len(m.GetPayload()), maxBytes)
		} else if err := validExtras(m.GetCorrelationId(), m.GetIdempotencyKey(), m.GetContentType(), m.GetHeaders()); err != nil {
			failed = status.Convert(err)
		}

		// Routing.
		var toMe, toPeer bool
		errCode, errSub := codes.OK, ""
		routeID := func(kind, name, self, other, selfName, otherName string) {
			switch {
			case name == "" || len(name) > 256:
				errCode, errSub = codes.InvalidArgument, kind+" id must be 1 to 256 bytes"
			case name == self || name == selfName:
				toMe = true
			case name == other || name == otherName:
				toPeer = true
			default:
				errCode, errSub = codes.NotFound, "no session for "+kind
			}
		}
		switch tg := m.GetTarget().(type) {
		case nil:
			if m.GetCorrelationId() == "" {
				errCode, errSub = codes.InvalidArgument, "message has no target and no correlation id"
			} else {
				errCode, errSub = codes.NotFound, "no request with this correlation id"
			}
		case *tetherv1.ClientMessage_Topic:
			switch {
			case !fzValidTopic(tg.Topic):
				errCode, errSub = codes.InvalidArgument, fzTopicError(tg.Topic)
			case tg.Topic == "t":
				toMe, toPeer = true, true
			}
		case *tetherv1.ClientMessage_SessionId:
			routeID("session", tg.SessionId, meID, peerID, "", "")
		case *tetherv1.ClientMessage_ClientId:
			routeID("client", tg.ClientId, "", "", "me", "peer")
		}
		if failed != nil {
			errCode, errSub, toMe, toPeer = failed.Code(), failed.Message(), false, false
		}
		delivered := func(s *Session, want bool) {
			t.Helper()
			s.mu.Lock()
			n := s.outSeq
			s.mu.Unlock()
			if w := map[bool]uint64{false: 0, true: 1}[want]; n != w {
				t.Fatalf("session %s was sent %d messages; want %d", s.clientID, n, w)
			}
		}
		hasError := func(seq uint64) func([]*tetherv1.ConnectResponse) bool {
			return func(out []*tetherv1.ConnectResponse) bool {
				return slices.ContainsFunc(fzErrors(out), func(e *tetherv1.Error) bool {
					return codes.Code(e.GetCode()) == errCode && e.GetSeq() == seq && strings.Contains(e.GetMessage(), errSub)
				})
			}
		}
		acksOf := func(seq uint64, n int) func([]*tetherv1.ConnectResponse) bool {
			return func(out []*tetherv1.ConnectResponse) bool {
				k := 0
				for _, a := range fzAcks(out) {
					if a == seq {
						k++
					}
				}
				return k >= n
			}
		}
		me.mustAwait("ack 1", acksOf(1, 1))
		if errCode != codes.OK {
			me.mustAwait(fmt.Sprintf("an Error frame %v %q for seq 1", errCode, errSub), hasError(1))
		} else if es := fzErrors(me.frames()); len(es) > 0 {
			t.Fatalf("unexpected Error frame %v", es[0])
		}
		delivered(meS, toMe)
		delivered(peerS, toPeer)
		if toPeer {
			peer.mustAwait("the message", func(out []*tetherv1.ConnectResponse) bool { return len(fzMessages(out)) == 1 })
			got := fzMessages(peer.frames())[0]
			wantTopic := m.GetTopic()
			if !bytes.Equal(got.GetPayload(), m.GetPayload()) || got.GetContentType() != m.GetContentType() ||
				got.GetCorrelationId() != m.GetCorrelationId() || !maps.Equal(got.GetHeaders(), m.GetHeaders()) ||
				got.GetTopic() != wantTopic || got.GetSource().GetSessionId() != meID || got.GetSource().GetClientId() != "me" {
				t.Fatalf("peer got %v; sent %v", got, m)
			}
		}

		// The same seq again: dropped, acked again.
		dup := proto.Clone(m).(*tetherv1.ClientMessage)
		dup.Seq = 1
		me.send(fzMsg(dup))
		me.sync()
		me.mustAwait("a second ack of 1", acksOf(1, 2))
		delivered(meS, toMe)
		delivered(peerS, toPeer)

		// The same idempotency key under a new seq: dropped if the first
		// went through; handled again if it failed (the failure must not
		// burn the key).
		if idem != "" {
			again := proto.Clone(m).(*tetherv1.ClientMessage)
			again.Seq = 2
			me.send(fzMsg(again))
			me.sync()
			me.mustAwait("ack 2", acksOf(2, 1))
			delivered(meS, toMe)
			delivered(peerS, toPeer)
			if errCode != codes.OK {
				me.mustAwait(fmt.Sprintf("an Error frame %v %q for seq 2", errCode, errSub), hasError(2))
			}
		}
		h.checkInvariants()
		me.release()
		peer.release()
	})
}

// FuzzAckSequence plays a sequence of operations on one session: the server
// sends messages; the client acks (all, half, stale, beyond what was sent,
// MaxUint64), sends messages (numbered by the server, next, duplicate,
// skipping ahead), pings, pongs with odd timestamps and, rarely, closes.
// The session's seqs must match the model's after every input, every client
// message must be acked, every ping answered, and the violations must end
// the stream with the documented status.
func FuzzAckSequence(f *testing.F) {
	// An op is kind + 6*arg; see the switch below.
	f.Add([]byte{0, 1})                             // one message, acked
	f.Add([]byte{42, 7, 13, 1})                     // 8 messages; ack half, a stale one, all
	f.Add([]byte{19})                               // ack beyond sent
	f.Add([]byte{25})                               // ack MaxUint64
	f.Add([]byte{2, 8, 14, 14, 2})                  // auto, next, duplicate, duplicate, auto
	f.Add([]byte{8, 20})                            // next, then skip ahead
	f.Add([]byte{3, 9, 4, 10, 16, 22})              // pings and pongs
	f.Add([]byte{0, 8, 5})                          // close after traffic
	f.Add(bytes.Repeat([]byte{42, 2, 1, 3, 14}, 8)) // interleaved
	f.Fuzz(func(t *testing.T, ops []byte) {
		h := newFzHarness(t)
		c := h.dial("")
		id := c.open(&tetherv1.Hello{ClientId: "a"}).GetSessionId()
		s := h.session(id)
		var sent, acked, in uint64
		var pings, lastPing uint64
		for i, op := range ops[:min(len(ops), 256)] {
			arg := uint64(op) / 6
			switch op % 6 {
			case 0: // the server sends 1..8 messages
				k := arg%8 + 1
				if sent+k > 512 || sent+k > acked+256 {
					// 256: the receive window a client that asks for none
					// gets; the server holds the rest back until acks
					// come, which this model does not wait for.
					continue
				}
				for range k {
					if _, err := h.srv.Publish(context.Background(), broker.Session(id), []byte("m"), ""); err != nil {
						t.Fatal(err)
					}
				}
				sent += k
				c.mustAwait(fmt.Sprintf("%d messages", sent), func(out []*tetherv1.ConnectResponse) bool { return uint64(len(fzMessages(out))) == sent })
			case 1: // the client acks
				var seq uint64
				switch arg % 5 {
				case 0:
					seq = sent
				case 1:
					seq = sent / 2
				case 2:
					seq = acked - min(acked, 1)
				case 3:
					seq = sent + 1 + arg/5
				case 4:
					seq = math.MaxUint64
				}
				c.send(fzAck(seq))
				if seq > sent {
					c.expectEnd(codes.InvalidArgument, fmt.Sprintf("ack %d is beyond the highest seq sent (%d)", seq, sent))
					return
				}
				acked = max(acked, seq)
			case 2: // the client sends a message
				var seq uint64
				switch arg % 4 {
				case 1:
					seq = in + 1
				case 2:
					seq = in // a duplicate (or, before any, a server-numbered one)
				case 3:
					seq = in + 2 + arg/4
				}
				c.send(fzMsg(&tetherv1.ClientMessage{Seq: seq, Target: &tetherv1.ClientMessage_Topic{Topic: "nowhere"}}))
				eff := seq
				if eff == 0 {
					eff = in + 1
				}
				if eff > in+1 {
					c.expectEnd(codes.InvalidArgument, fmt.Sprintf("message seq %d skips ahead: expected %d", eff, in+1))
					return
				}
				in = max(in, eff)
			case 3: // ping
				pings++
				lastPing = uint64(i)<<8 | arg
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Ping{Ping: &tetherv1.Ping{Id: lastPing, SentAt: timestamppb.Now()}}})
			case 4: // pong, with a timestamp that may be absent, future or invalid
				var at *timestamppb.Timestamp
				switch arg % 4 {
				case 1:
					at = timestamppb.Now()
				case 2:
					at = timestamppb.New(time.Now().Add(time.Duration(arg) * time.Hour))
				case 3:
					at = &timestamppb.Timestamp{Seconds: -int64(arg) << 40, Nanos: -1}
				}
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: &tetherv1.Pong{Id: arg, SentAt: at}}})
			case 5: // close, rarely
				if arg%8 != 0 {
					continue
				}
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: string(ops)}}})
				if err := c.end(); err != nil {
					t.Fatalf("the stream ended with %v after close; want OK", err)
				}
				if h.session(id) != nil {
					t.Fatal("the session outlived its close")
				}
				return
			}
		}
		c.sync()
		s.mu.Lock()
		gotAcked, gotSent := s.ackedOut, s.sentSeq.Load()
		s.mu.Unlock()
		if gotAcked != acked || gotSent != sent || s.inSeq.Load() != in {
			t.Fatalf("session last acked %d, sent %d, received %d; want %d, %d, %d", gotAcked, gotSent, s.inSeq.Load(), acked, sent, in)
		}
		if in > 0 {
			c.mustAwait(fmt.Sprintf("ack %d", in), func(out []*tetherv1.ConnectResponse) bool {
				as := fzAcks(out)
				return len(as) > 0 && as[len(as)-1] == in
			})
		}
		if pings > 0 {
			c.mustAwait(fmt.Sprintf("pong %d", lastPing), func(out []*tetherv1.ConnectResponse) bool {
				for _, f := range slices.Backward(out) {
					if p := f.GetPong(); p != nil {
						return p.GetId() == lastPing
					}
				}
				return false
			})
		}
		c.mu.Lock()
		var pongs uint64
		for _, f := range c.out {
			if f.GetPong() != nil {
				pongs++
			}
		}
		acks := fzAcks(c.out)
		c.mu.Unlock()
		if pongs > pings {
			t.Fatalf("%d pongs for %d pings", pongs, pings)
		}
		for i := 1; i < len(acks); i++ {
			if acks[i] < acks[i-1] {
				t.Fatalf("acks went backwards: %v", acks)
			}
		}
		h.checkInvariants()
		c.release()
	})
}

// FuzzSubscribe plays subscribe and unsubscribe frames with fuzzed topic
// lists (empty, invalid UTF-8, spaces, 257 bytes, duplicates, and one list
// of up to 5,000 more topics) against a limit of 64 topics. An invalid
// topic ends the stream with INVALID_ARGUMENT; going beyond the limit gets
// a non-fatal RESOURCE_EXHAUSTED Error frame and changes nothing; the
// session then holds exactly the model's topics, and a publish to each
// reaches it.
func FuzzSubscribe(f *testing.F) {
	// Ops are separated by 0x00; an op is a kind byte (even: subscribe, odd:
	// unsubscribe) and topics separated by 0xff. repeat adds topics to the
	// first op.
	f.Add([]byte("\x02a\xffb"), uint16(0))
	f.Add([]byte("\x02a\xffa\xffb\x00\x01a"), uint16(0))
	f.Add([]byte("\x02"), uint16(70))
	f.Add([]byte("\x02x"), uint16(63))
	f.Add([]byte("\x02x\x00\x02y"), uint16(63))
	f.Add([]byte("\x02x\xffx"), uint16(63)) // 65 topics, 64 distinct: within the limit
	f.Add([]byte("\x02x"), uint16(4999))
	f.Add([]byte("\x02has space"), uint16(0))
	f.Add([]byte("\x02tab\tbed"), uint16(0))
	f.Add([]byte("\x02ok\xff\xc3\x28"), uint16(0))
	f.Add([]byte("\x02ok\xff"), uint16(0))
	f.Add(append([]byte("\x02"), bytes.Repeat([]byte("t"), 257)...), uint16(0))
	f.Add([]byte("\x02a\x00\x01a\x00\x02a\x00\x01zz\xffa"), uint16(0))
	f.Add([]byte("\x01never\xff\xc3\x00\x02\xe2\x82\xac"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, repeat uint16) {
		const maxTopics = 64
		h := newFzHarness(t, WithMaxTopics(maxTopics))
		c := h.dial("")
		id := c.open(&tetherv1.Hello{ClientId: "s"}).GetSessionId()
		model := make(map[string]bool)
		errs := 0
		for i, op := range bytes.Split(data, []byte{0})[:min(bytes.Count(data, []byte{0})+1, 64)] {
			var topics []string
			if len(op) > 1 {
				for _, tp := range bytes.Split(op[1:], []byte{0xff}) {
					topics = append(topics, string(tp))
				}
			}
			if i == 0 {
				for j := range int(repeat) % 5000 {
					topics = append(topics, "r"+strconv.Itoa(j))
				}
			}
			// A Subscribe or Unsubscribe is all or nothing; a bad topic
			// gets an Error frame, and the stream goes on.
			expectError := func(code codes.Code, sub string) {
				errs++
				c.sync()
				c.mustAwait(fmt.Sprintf("%d Error frames", errs), func(out []*tetherv1.ConnectResponse) bool { return len(fzErrors(out)) == errs })
				e := fzErrors(c.frames())[errs-1]
				if codes.Code(e.GetCode()) != code || !strings.Contains(e.GetMessage(), sub) || e.GetRequestId() != uint64(i+1) {
					t.Fatalf("Error frame %v; want %v containing %q for request %d", e, code, sub, i+1)
				}
			}
			bad := slices.IndexFunc(topics, func(tp string) bool { return !fzValidTopic(tp) })
			if len(op) > 0 && op[0]%2 == 1 {
				c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Unsubscribe{Unsubscribe: &tetherv1.Unsubscribe{Topics: topics, RequestId: uint64(i + 1)}}})
				if bad >= 0 {
					expectError(codes.InvalidArgument, fzTopicError(topics[bad]))
					continue
				}
				for _, tp := range topics {
					delete(model, tp)
				}
				continue
			}
			c.send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Subscribe{Subscribe: &tetherv1.Subscribe{Topics: topics, RequestId: uint64(i + 1)}}})
			if bad >= 0 {
				expectError(codes.InvalidArgument, fzTopicError(topics[bad]))
				continue
			}
			var added []string
			for _, tp := range topics {
				if !model[tp] && !slices.Contains(added, tp) {
					added = append(added, tp)
				}
			}
			if len(model)+len(added) > maxTopics {
				expectError(codes.InvalidArgument, fmt.Sprintf("would exceed the limit of %d per session (Welcome.limits.max_topics)", maxTopics))
				continue
			}
			for _, tp := range added {
				model[tp] = true
			}
		}
		c.sync()
		want := slices.Sorted(maps.Keys(model))
		if got := h.session(id).Topics(); !slices.Equal(got, want) {
			t.Fatalf("session topics %q; want %q", got, want)
		}
		if es := fzErrors(c.frames()); len(es) != errs {
			t.Fatalf("%d Error frames; want %d", len(es), errs)
		}
		for _, tp := range want {
			if n, err := h.srv.Publish(context.Background(), broker.Topic(tp), nil, ""); n != 1 || err != nil {
				t.Fatalf("a publish to %q reached %d sessions (%v); want 1", tp, n, err)
			}
		}
		h.checkInvariants()
		c.release()
	})
}

// FuzzResumeAfterDetach opens a session, has the server send it some
// messages, acks some, breaks the stream, queues more while it is away and
// resumes it with a fuzzed token (the real one, random, one byte off,
// empty) and last_received_seq, from its own principal or another. The
// outcome must follow the spec: RESUMED with the replay from the right seq,
// or a fresh session with UNKNOWN_SESSION, PRINCIPAL_MISMATCH or
// SEQ_MISMATCH. Then the tokens must rotate: the old one stops working
// once a resume used it, and the new one works.
func FuzzResumeAfterDetach(f *testing.F) {
	f.Add(uint8(0), "", uint64(0), uint8(5), uint8(2), uint8(3), true, true)
	f.Add(uint8(0), "", uint64(5), uint8(5), uint8(0), uint8(0), true, true)
	f.Add(uint8(0), "", uint64(6), uint8(5), uint8(0), uint8(2), true, true)
	f.Add(uint8(0), "", uint64(1), uint8(5), uint8(4), uint8(0), true, false)
	f.Add(uint8(0), "", uint64(0), uint8(0), uint8(0), uint8(0), false, true)
	f.Add(uint8(1), "bogus", uint64(0), uint8(1), uint8(0), uint8(0), true, true)
	f.Add(uint8(2), "", uint64(3), uint8(1), uint8(0), uint8(0), true, true)
	f.Add(uint8(3), "", uint64(0), uint8(1), uint8(0), uint8(0), true, false)
	f.Add(uint8(0), "", uint64(math.MaxUint64), uint8(31), uint8(31), uint8(7), true, true)
	f.Fuzz(func(t *testing.T, tokenMode uint8, token string, last uint64, published, acked, whileAway uint8, samePrincipal, again bool) {
		h := newFzHarness(t)
		ctx := context.Background()
		publish := func(id string, n uint64) {
			for range n {
				if _, err := h.srv.Publish(ctx, broker.Session(id), []byte("m"), ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		c1 := h.dial("p")
		w1 := c1.open(&tetherv1.Hello{ClientId: "r", Topics: []string{"t"}})
		id := w1.GetSessionId()
		n := uint64(published % 32)
		publish(id, n)
		fzAwaitSeqs(c1, 1, n)
		a := uint64(acked) % (n + 1)
		c1.send(fzAck(a))
		c1.sync()
		c1.release()
		m := uint64(whileAway % 8)
		publish(id, m) // queued for the resume

		tok := w1.GetResumeToken()
		switch tokenMode % 4 {
		case 1:
			tok = token
		case 2:
			b := []byte(tok)
			b[last%uint64(len(b))] ^= 1
			tok = string(b)
		case 3:
			tok = ""
		}
		principal := "q"
		if samePrincipal {
			principal = "p"
		}
		want := tetherv1.ResumeStatus_RESUME_STATUS_RESUMED
		switch {
		case tok != w1.GetResumeToken():
			want = tetherv1.ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION
		case principal != "p":
			want = tetherv1.ResumeStatus_RESUME_STATUS_PRINCIPAL_MISMATCH
		case last > n:
			want = tetherv1.ResumeStatus_RESUME_STATUS_SEQ_MISMATCH
		}
		resumed := want == tetherv1.ResumeStatus_RESUME_STATUS_RESUMED
		c2 := h.dial(principal)
		w2 := c2.open(&tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: id, ResumeToken: tok, LastReceivedSeq: last}})
		if w2.GetResumeStatus() != want || w2.GetResumed() != resumed {
			t.Fatalf("resume_status %v resumed %v; want %v", w2.GetResumeStatus(), w2.GetResumed(), want)
		}
		s := h.session(id)
		if resumed {
			if w2.GetSessionId() != id || w2.GetLastSentSeq() != n+m || !slices.Equal(w2.GetTopics(), []string{"t"}) {
				t.Fatalf("resumed welcome: session %q last_sent_seq %d topics %q; want %q %d [t]", w2.GetSessionId(), w2.GetLastSentSeq(), w2.GetTopics(), id, n+m)
			}
			fzAwaitSeqs(c2, max(a, last)+1, n+m)
			s.mu.Lock()
			gotAcked := s.ackedOut
			s.mu.Unlock()
			if gotAcked != max(a, last) {
				t.Fatalf("last acked %d after resuming from %d (acked %d); want %d", gotAcked, last, a, max(a, last))
			}
		} else {
			if w2.GetSessionId() == id || w2.GetLastSentSeq() != 0 {
				t.Fatalf("refused resume: welcome session %q last_sent_seq %d; want a fresh session", w2.GetSessionId(), w2.GetLastSentSeq())
			}
			if s == nil || s.info().GetState() != tetherv1.SessionState_SESSION_STATE_DETACHED {
				t.Fatal("a refused resume disturbed the detached session")
			}
		}
		h.checkInvariants()
		if !again {
			c2.release()
			return
		}
		c2.release()
		// After a resume, the rotated token works; once it was used, the
		// original no longer does. After a refused resume, the original
		// still works.
		if resumed {
			c4 := h.dial("p")
			if w4 := c4.open(&tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: id, ResumeToken: w2.GetResumeToken()}}); !w4.GetResumed() {
				t.Fatalf("a resume with the rotated token: %v", w4.GetResumeStatus())
			}
			c4.release()
		}
		c3 := h.dial("p")
		w3 := c3.open(&tetherv1.Hello{Resume: &tetherv1.Resume{SessionId: id, ResumeToken: w1.GetResumeToken()}})
		if w3.GetResumed() == resumed {
			t.Fatalf("a resume with the original token after a resume that %s: %v", map[bool]string{true: "succeeded", false: "failed"}[resumed], w3.GetResumeStatus())
		}
		c3.release()
		h.checkInvariants()
	})
}

package server

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// The hub benchmarks drive the per-message path without gRPC: sessions are
// attached to streams that nobody writes to the wire, and the benchmark
// plays the writer (stream.next) and the client's acks itself.
//
//	go test -run '^$' -bench 'Deliver|MessagePath|Ack' -benchmem ./server/

// clientAckEvery is how many messages the SDK acknowledges at once
// (client/conn.go ackBatch).
const clientAckEvery = 32

// benchHub is a server on a memory broker with n sessions attached to fake
// streams: session i has client id "c<i>" and is subscribed to "t".
type benchHub struct {
	srv      *Server
	sessions []*Session
}

func newBenchHub(b *testing.B, n int) *benchHub {
	b.Helper()
	srv, err := New(WithHandler(Router{}), WithServerID("bench"), WithMaxSessions(max(n, 1)))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := &benchHub{srv: srv}
	for i := range n {
		h.sessions = append(h.sessions, h.open(b, "c"+strconv.Itoa(i), "t"))
	}
	b.Cleanup(h.close)
	return h
}

// close ends the streams, which stops their timers, and lets go of the
// server, so that a benchmark holding h measures no stale memory.
// Server.Close would also end every session (records, unbinds, tombstone
// timers): slow for 100,000 sessions and not what is measured, and the
// server holds no goroutine.
func (h *benchHub) close() {
	for _, s := range h.sessions {
		s.st.finish(nil)
	}
	h.srv, h.sessions = nil, nil
}

// open does what Server.open does for a fresh session, without gRPC and
// without arming the heartbeat timer: create, Welcome (popped, as a writer
// would write it).
func (h *benchHub) open(b *testing.B, clientID string, topics ...string) *Session {
	st := newStream(h.srv, nil, "bench")
	s, token, err := h.srv.create(context.Background(), st, "", &tetherv1.Hello{ClientId: clientID, Topics: topics})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.srv.welcome(st, s, tetherv1.ResumeStatus_RESUME_STATUS_NOT_REQUESTED, nil, token); err != nil {
		b.Fatal(err)
	}
	if f := nextFrame(st); f.GetWelcome() == nil {
		b.Fatalf("first frame %v, want welcome", f)
	}
	return s
}

// drain plays s's writer, writing nothing, and acks every ackEvery
// messages as the client would (0: no acks).
func (h *benchHub) drain(s *Session, ackEvery int) {
	st := s.st
	for {
		f := nextFrame(st)
		if f == nil {
			return
		}
		m, ok := f.Frame.(*tetherv1.ConnectResponse_Message)
		if !ok {
			continue
		}
		seq := m.Message.Seq
		storeMax(&s.sentSeq, seq)
		if ackEvery > 0 && seq%uint64(ackEvery) == 0 {
			if err := s.ack(seq); err != nil {
				panic(err)
			}
		}
	}
}

// drainAll empties every session's queue and acks everything sent, a
// receive window at a time.
func (h *benchHub) drainAll() {
	for _, s := range h.sessions {
		for {
			h.drain(s, 0)
			if err := s.ack(s.sentSeq.Load()); err != nil {
				panic(err)
			}
			s.st.mu.Lock()
			empty := s.st.data.len() == 0
			s.st.mu.Unlock()
			if empty {
				break
			}
		}
	}
}

type hubTarget struct {
	name string
	subs int // sessions on the node
	to   func(h *benchHub) broker.Address
}

var hubTargets = []hubTarget{
	{"session", 1, func(h *benchHub) broker.Address { return broker.Session(h.sessions[0].id) }},
	{"client", 1, func(h *benchHub) broker.Address { return broker.Client(h.sessions[0].clientID) }},
	{"topic-1", 1, func(*benchHub) broker.Address { return broker.Topic("t") }},
	{"topic-100", 100, func(*benchHub) broker.Address { return broker.Topic("t") }},
	{"topic-10000", 10_000, func(*benchHub) broker.Address { return broker.Topic("t") }},
}

// drainEvery keeps the queues below the outbound log's bound (4096).
const drainEvery = 512

// BenchmarkDeliver measures receiver.Deliver → Session.enqueue (log
// append, stream queue) for one message, per target. The writer's drain
// runs outside the timer every drainEvery messages. The raw twin is the
// least any hub does: a map lookup under a read lock and a locked append
// to the stream's queue with a wake-up, per recipient.
func BenchmarkDeliver(b *testing.B) {
	payload := make([]byte, 64)
	for _, tc := range hubTargets {
		b.Run(tc.name, func(b *testing.B) {
			h := newBenchHub(b, tc.subs)
			r := receiver{h.srv}
			m := &broker.Message{Target: tc.to(h), Payload: payload, PublishedAt: time.Now()}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if n, _ := r.Deliver(m); n != tc.subs {
					b.Fatalf("Deliver reached %d sessions, want %d", n, tc.subs)
				}
				if i++; i%drainEvery == 0 {
					b.StopTimer()
					h.drainAll()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tc.subs), "ns/delivery")
		})
		if tc.name == "client" || tc.name == "topic-1" {
			continue // the raw twin is the same as for session
		}
		b.Run("raw/"+tc.name, func(b *testing.B) {
			hub := newRawHub(tc.subs)
			m := &broker.Message{Target: broker.Topic("t"), Payload: payload, PublishedAt: time.Now()}
			if tc.name == "session" {
				m.Target = broker.Session("s0")
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				hub.deliver(m)
				if i++; i%drainEvery == 0 {
					b.StopTimer()
					hub.drain()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tc.subs), "ns/delivery")
		})
	}
}

// BenchmarkMessagePath measures a message's whole server-side life apart
// from gRPC: Deliver, the writer popping and filling the frame, and the
// client's ack every clientAckEvery messages trimming the log.
func BenchmarkMessagePath(b *testing.B) {
	payload := make([]byte, 64)
	for _, tc := range hubTargets {
		if tc.name == "topic-1" || tc.name == "client" {
			continue
		}
		b.Run(tc.name, func(b *testing.B) {
			h := newBenchHub(b, tc.subs)
			r := receiver{h.srv}
			m := &broker.Message{Target: tc.to(h), Payload: payload, PublishedAt: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				r.Deliver(m)
				for _, s := range h.sessions {
					h.drain(s, clientAckEvery)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tc.subs), "ns/delivery")
		})
	}
}

// BenchmarkAck measures Session.ack and the log Trim it does, within one
// message's path to a session: every message acked on its own, and acks
// batched as the SDK sends them.
func BenchmarkAck(b *testing.B) {
	payload := make([]byte, 64)
	for _, every := range []int{1, clientAckEvery} {
		b.Run("every-"+strconv.Itoa(every), func(b *testing.B) {
			h := newBenchHub(b, 1)
			s := h.sessions[0]
			r := receiver{h.srv}
			m := &broker.Message{Target: broker.Session(s.id), Payload: payload, PublishedAt: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				r.Deliver(m)
				h.drain(s, every)
			}
		})
	}
}

// BenchmarkAckCoalesce measures the server's side of inbound acks: each
// received client message queues a cumulative Ack (stream.noteReceived),
// or updates the one queued and not yet written; the writer pops the
// queued Ack frames.
func BenchmarkAckCoalesce(b *testing.B) {
	h := newBenchHub(b, 1)
	s := h.sessions[0]
	st := s.st
	st.startLiveness(time.Hour, 3, time.Second, time.Time{})
	b.Cleanup(func() { st.finish(nil) })
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		s.inSeq.Store(seq)
		st.noteReceived(seq)
		if f := nextFrame(st); f != nil && f.GetAck() == nil {
			b.Fatalf("unexpected frame %v", f)
		}
	}
}

// rawHub is the raw twin of the hub: streams by id and by topic, each a
// locked queue with a wake-up channel, and nothing else.
type rawHub struct {
	mu       sync.RWMutex
	sessions map[string]*rawStream
	topics   map[string]map[*rawStream]struct{}
}

type rawStream struct {
	mu   sync.Mutex
	data []*broker.Message
	wake chan struct{}
}

func newRawHub(n int) *rawHub {
	h := &rawHub{sessions: make(map[string]*rawStream), topics: map[string]map[*rawStream]struct{}{"t": {}}}
	for i := range n {
		st := &rawStream{wake: make(chan struct{}, 1)}
		h.sessions["s"+strconv.Itoa(i)] = st
		h.topics["t"][st] = struct{}{}
	}
	return h
}

func (h *rawHub) deliver(m *broker.Message) {
	var many []*rawStream
	h.mu.RLock()
	if m.Target.Kind == broker.KindSession {
		if st := h.sessions[m.Target.Name]; st != nil {
			many = append(many, st)
		}
	} else {
		set := h.topics[m.Target.Name]
		many = make([]*rawStream, 0, len(set))
		for st := range set {
			many = append(many, st)
		}
	}
	h.mu.RUnlock()
	for _, st := range many {
		st.mu.Lock()
		st.data = append(st.data, m)
		st.mu.Unlock()
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
}

func (h *rawHub) drain() {
	for _, st := range h.sessions {
		st.mu.Lock()
		clear(st.data)
		st.data = st.data[:0]
		st.mu.Unlock()
	}
}

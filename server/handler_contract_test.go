package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/server"
)

// The Handler contract (see server.Handler): the calls of one session never
// overlap; OnClose runs exactly once, only after an OnConnect that returned
// nil, and last. These tests end sessions in every way the server knows
// while their clients keep sending, with a Handler that records every
// breach of the contract.

// contractHandler records the calls of each session and the breaches.
type contractHandler struct {
	server.Router
	mu       sync.Mutex
	sessions map[string]*contractCalls
	breaches []string
}

type contractCalls struct {
	running   string // the callback running now, "" when none
	connected bool   // an OnConnect returned nil
	closes    int
	messages  int
}

func newContractHandler() *contractHandler {
	return &contractHandler{sessions: make(map[string]*contractCalls)}
}

// enter notes the start of callback name of s, and the breaches it makes.
func (h *contractHandler) enter(s *server.Session, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.sessions[s.ID()]
	if c == nil {
		c = &contractCalls{}
		h.sessions[s.ID()] = c
	}
	if c.running != "" {
		h.breaches = append(h.breaches, fmt.Sprintf("session %s: %s while %s runs", s.ID(), name, c.running))
	}
	if c.closes > 0 {
		h.breaches = append(h.breaches, fmt.Sprintf("session %s: %s after OnClose", s.ID(), name))
	}
	if name == "OnClose" && !c.connected {
		h.breaches = append(h.breaches, fmt.Sprintf("session %s: OnClose without an OnConnect that returned nil", s.ID()))
	}
	c.running = name
}

// leave notes the end of a callback; connected when it was an OnConnect
// that returned nil.
func (h *contractHandler) leave(s *server.Session, connected, closed, message bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.sessions[s.ID()]
	c.running = ""
	c.connected = c.connected || connected
	if closed {
		c.closes++
	}
	if message {
		c.messages++
	}
}

// busy widens the window in which another callback could overlap.
func busy() {
	for range 50 {
		runtime.Gosched()
	}
}

func (h *contractHandler) OnConnect(ctx context.Context, s *server.Session) error {
	h.enter(s, "OnConnect")
	busy()
	var err error
	if strings.HasPrefix(s.ClientID(), "reject") {
		err = status.Error(codes.PermissionDenied, "rejected by the test")
	}
	h.leave(s, err == nil, false, false)
	return err
}

func (h *contractHandler) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	h.enter(s, "OnMessage")
	busy()
	err := h.Router.OnMessage(ctx, s, m)
	h.leave(s, false, false, true)
	return err
}

func (h *contractHandler) OnClose(s *server.Session, reason string) {
	h.enter(s, "OnClose")
	busy()
	h.leave(s, false, true, false)
}

// check waits until every session whose OnConnect returned nil has had its
// OnClose, then fails the test for every breach and every session closed
// twice, or not at all. It reports how many messages were handled.
func (h *contractHandler) check(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		h.mu.Lock()
		open := 0
		for _, c := range h.sessions {
			if c.connected && c.closes == 0 {
				open++
			}
		}
		h.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d sessions whose OnConnect returned nil got no OnClose within %v", open, waitLong)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.breaches {
		t.Error(b)
	}
	messages := 0
	for id, c := range h.sessions {
		if c.closes > 1 {
			t.Errorf("session %s: OnClose ran %d times", id, c.closes)
		}
		messages += c.messages
	}
	return messages
}

// flow is a client that sends messages on its stream until the stream
// ends or it is stopped.
type flow struct {
	cancel  context.CancelFunc
	done    chan struct{}
	welcome chan *tetherv1.Welcome // the Welcome, once; closed if none came
}

// startFlow opens a stream with h on n and sends a message every
// millisecond or so; it acks nothing (the messages go to a topic nobody
// holds, so nothing comes back but acks and pongs).
func startFlow(n *node, h *tetherv1.Hello) *flow {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flow{cancel: cancel, done: make(chan struct{}), welcome: make(chan *tetherv1.Welcome, 1)}
	go func() {
		defer close(f.done)
		defer cancel()
		s, err := n.tether().Connect(ctx)
		if err != nil {
			close(f.welcome)
			return
		}
		if s.Send(hello(h)) != nil {
			close(f.welcome)
			return
		}
		first, err := s.Recv()
		if err != nil || first.GetWelcome() == nil {
			close(f.welcome)
			return
		}
		f.welcome <- first.GetWelcome()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			for {
				if _, err := s.Recv(); err != nil {
					return
				}
			}
		}()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ended:
				return
			case <-ctx.Done():
				<-ended
				return
			case <-tick.C:
			}
			m := &tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
				Target: &tetherv1.ClientMessage_Topic{Topic: "nobody"}, Payload: []byte("x")}}}
			if s.Send(m) != nil {
				cancel()
			}
		}
	}()
	return f
}

// wait returns the flow's Welcome (nil if it got none).
func (f *flow) wait(t *testing.T) *tetherv1.Welcome {
	t.Helper()
	select {
	case w := <-f.welcome:
		return w
	case <-time.After(waitLong):
		t.Fatal("no welcome within", waitLong)
		return nil
	}
}

// stop ends the flow's stream (a broken connection, as the server sees
// it) and waits for its goroutines.
func (f *flow) stop() {
	f.cancel()
	<-f.done
}

// contractFlows starts k flows with client ids prefix-0… and waits for
// their Welcomes.
func contractFlows(t *testing.T, n *node, prefix string, k int) ([]*flow, []string) {
	t.Helper()
	flows := make([]*flow, k)
	ids := make([]string, k)
	for i := range flows {
		flows[i] = startFlow(n, &tetherv1.Hello{ClientId: fmt.Sprintf("%s-%d", prefix, i)})
	}
	for i, f := range flows {
		w := f.wait(t)
		if w == nil {
			t.Fatalf("flow %d got no welcome", i)
		}
		ids[i] = w.GetSessionId()
		t.Cleanup(f.stop)
	}
	return flows, ids
}

// waitMessages waits until the handler has handled at least k messages
// more than before, so that the ends below hit sessions mid-flow.
func (h *contractHandler) waitMessages(t *testing.T, k int) {
	t.Helper()
	count := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, c := range h.sessions {
			n += c.messages
		}
		return n
	}
	target := count() + k
	waitFor(t, func() bool { return count() >= target })
}

const contractFlowCount = 6

func TestHandlerContractAdminClose(t *testing.T) {
	t.Parallel()
	h := newContractHandler()
	n := startNode(t, server.WithHandler(h))
	_, ids := contractFlows(t, n, "admin", contractFlowCount)
	h.waitMessages(t, 50)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			_, _ = n.admin().CloseSession(context.Background(), &tetherv1.CloseSessionRequest{SessionId: id, Reason: "test"})
		})
	}
	wg.Wait()
	if h.check(t) == 0 {
		t.Fatal("no message was handled")
	}
}

func TestHandlerContractTakeover(t *testing.T) {
	t.Parallel()
	h := newContractHandler()
	n := startNode(t, server.WithHandler(h))
	contractFlows(t, n, "dev", contractFlowCount)
	h.waitMessages(t, 50)
	// The same client ids again: each new session takes the old one's id
	// over, from its own stream's goroutine, while the old one's reader
	// is handling messages.
	contractFlows(t, n, "dev", contractFlowCount)
	h.waitMessages(t, 50)
	_ = n.srv.Close()
	h.check(t)
}

func TestHandlerContractExpiry(t *testing.T) {
	t.Parallel()
	h := newContractHandler()
	n := startNode(t, server.WithHandler(h), server.WithResumeWindow(20*time.Millisecond))
	flows, ids := contractFlows(t, n, "exp", contractFlowCount)
	h.waitMessages(t, 50)
	for _, f := range flows {
		f.stop() // the streams break; the sessions expire 20ms later
	}
	for _, id := range ids {
		waitFor(t, func() bool { return n.state(t, id) == tetherv1.SessionState_SESSION_STATE_CLOSED })
	}
	h.check(t)
}

func TestHandlerContractDrain(t *testing.T) {
	t.Parallel()
	h := newContractHandler()
	n := startNode(t, server.WithHandler(h), server.WithDrain(50*time.Millisecond, 1000, 0))
	contractFlows(t, n, "drain", contractFlowCount)
	h.waitMessages(t, 50)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := n.srv.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	h.check(t)
}

func TestHandlerContractServerClose(t *testing.T) {
	t.Parallel()
	h := newContractHandler()
	n := startNode(t, server.WithHandler(h))
	contractFlows(t, n, "close", contractFlowCount)
	h.waitMessages(t, 50)
	_ = n.srv.Close()
	h.check(t)
}

// A session whose OnConnect refused it gets no OnClose, whichever way it
// ends; its client learns why.
func TestHandlerContractNoCloseWithoutConnect(t *testing.T) {
	t.Parallel()
	h := newContractHandler()
	n := startNode(t, server.WithHandler(h))
	c := n.dial(t, "")
	c.send(hello(&tetherv1.Hello{ClientId: "reject-me"}))
	c.expectEnd(codes.PermissionDenied, "rejected by the test")
	contractFlows(t, n, "ok", 2)
	h.waitMessages(t, 10)
	_ = n.srv.Close()
	h.check(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	rejected := 0
	for _, c := range h.sessions {
		if !c.connected {
			rejected++
			if c.closes != 0 {
				t.Error("a session whose OnConnect failed got OnClose")
			}
		}
	}
	if rejected != 1 {
		t.Fatalf("%d sessions were rejected; want 1", rejected)
	}
}

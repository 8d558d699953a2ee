package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/profile"
)

// SendMode is how sessions send their numbered messages.
type SendMode int

// The send modes.
const (
	// Send queues each message and returns (client.Session.Send).
	Send SendMode = iota
	// SendWait waits for the server's ack of each message, and re-sends
	// it with its idempotency key when the server reports a failure.
	SendWait
)

// String returns "Send" or "SendWait".
func (m SendMode) String() string {
	if m == Send {
		return "Send"
	}
	return "SendWait"
}

// checkerID is the client id of the session every session sends to.
const checkerID = "checker"

// Bounds of the traffic's retries.
const (
	// giveUp is how long a publisher, or a SendWait sender, retries one
	// message before it counts as reported lost.
	giveUp = 30 * time.Second
	// publishTimeout bounds one Publish call: above the NATS broker's
	// default request timeout (5 s), so that its errors come through.
	publishTimeout = 10 * time.Second
	retryMin       = 50 * time.Millisecond
	retryMax       = 500 * time.Millisecond
)

// traffic is the sessions, the checker and the publishers of a case, and
// what they saw.
type traffic struct {
	c        *cluster
	mode     SendMode
	tally    *Tally
	sessions map[string]*client.Session // by client id, the checker included
	ids      []string                   // the sending sessions' client ids
	pubs     []tetherv1.TetherServiceClient

	mu         sync.Mutex
	serverOf   map[string]string // client id → server id of its stream
	reconnects []time.Duration
	closed     []string       // sessions that ended for good
	errs       []string       // the first few unexpected errors
	retries    map[string]int // why senders retried, by kind
	fresh      map[string]int // sessions back without what they held, by why

	recv sync.WaitGroup // the receive loops
	gen  sync.WaitGroup // the senders and publishers
}

// startTraffic connects n sessions and the checker through the proxies,
// waits until each is connected, and starts their receive loops.
func startTraffic(tb TB, c *cluster, n int, mode SendMode, tally *Tally) *traffic {
	tb.Helper()
	tr := &traffic{c: c, mode: mode, tally: tally, sessions: map[string]*client.Session{}, serverOf: map[string]string{}, retries: map[string]int{}, fresh: map[string]int{}}
	for _, nd := range c.nodes {
		cc, err := grpc.NewClient(nd.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			tb.Fatalf("chaos: publisher for %s: %v", nd.id, err)
		}
		tb.Cleanup(func() { _ = cc.Close() })
		tr.pubs = append(tr.pubs, tetherv1.NewTetherServiceClient(cc))
	}
	ids := []string{checkerID}
	for i := range n {
		id := fmt.Sprintf("s%03d", i+1)
		ids = append(ids, id)
		tr.ids = append(tr.ids, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		opts := []client.Option{
			client.WithAddrs(c.proxyAddrs()...),
			client.WithClientID(id),
			client.WithProfile(profile.Datacenter()),
			client.WithLogger(c.log.With("session", id)),
			tr.watch(id),
		}
		opts = append(opts, sendFailureOptions(tr.sendFailed)...)
		s, err := client.New(opts...)
		if err != nil {
			tb.Fatalf("chaos: session %s: %v", id, err)
		}
		tr.sessions[id] = s
	}
	tb.Cleanup(func() {
		var closing sync.WaitGroup
		for _, s := range tr.sessions {
			closing.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = s.Close(ctx)
			})
		}
		closing.Wait()
		tr.recv.Wait()
	})
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() { errs[i] = tr.sessions[id].Connect(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("chaos: connecting the sessions: %v", err)
	}
	for _, id := range ids {
		tr.recv.Go(func() { tr.receive(id) })
	}
	// The state callbacks run on goroutines of their own: wait until each
	// session's first one has run, so that placement and serverOfChecker
	// are known.
	for tr.knownPlacements() < len(ids) {
		if ctx.Err() != nil {
			tb.Fatalf("chaos: the sessions' connected states did not arrive: %v", ctx.Err())
		}
		time.Sleep(poll)
	}
	return tr
}

// sendFailureOptions returns the client option through which a session
// reports, to report, a message that Send accepted and the server then
// failed to deliver, with the message's key (its payload): the SDK's
// WithOnSendError, "a callback the application sees without calling
// SendWait". This is the one place that wires the SDK's report of such
// failures into the counts.
func sendFailureOptions(report func(key string, err error)) []client.Option {
	return []client.Option{client.WithOnSendError(func(m client.Message, err error) {
		report(string(m.Payload), err)
	})}
}

// sendFailed records the report of a failed Send, by key.
func (tr *traffic) sendFailed(key string, err error) {
	sender, n, ok := parseKey(key)
	if !ok {
		tr.unexpected(fmt.Errorf("a send failure for key %q, not one of the chaos traffic's: %w", key, err))
		return
	}
	tr.tally.SenderTold(ClientToServer, sender, n)
}

// watch returns the option that follows session id's states: its server,
// its reconnect times, and the losses its resumes report.
func (tr *traffic) watch(id string) client.Option {
	var left time.Time // when the session left StateConnected; zero while connected
	connected := false
	return client.WithOnState(func(c client.StateChange) {
		switch c.State {
		case client.StateConnected:
			tr.mu.Lock()
			tr.serverOf[id] = c.ServerID
			if connected {
				tr.reconnects = append(tr.reconnects, c.Time.Sub(left))
			}
			tr.mu.Unlock()
			if connected && (!c.Resumed || c.Lost != nil) {
				tr.tally.ReceiverTold(id, left, c.Time)
				why := c.ResumeStatus.String()
				if c.Resumed {
					why = "lost range"
				}
				tr.mu.Lock()
				tr.fresh[why]++
				tr.mu.Unlock()
			}
			connected, left = true, time.Time{}
		case client.StateReconnecting:
			if left.IsZero() {
				left = c.Time
			}
		case client.StateClosed:
			tr.mu.Lock()
			tr.closed = append(tr.closed, fmt.Sprintf("%s (%v)", id, c.Err))
			tr.mu.Unlock()
		}
	})
}

// receive counts what session id receives until it is closed.
func (tr *traffic) receive(id string) {
	s := tr.sessions[id]
	for {
		m, err := s.Receive(context.Background())
		if err != nil {
			if !errors.Is(err, client.ErrClosed) {
				tr.unexpected(fmt.Errorf("Receive on %s: %w", id, err))
			}
			return
		}
		if id != checkerID {
			n, err := strconv.Atoi(string(m.Payload))
			if err != nil {
				tr.unexpected(fmt.Errorf("%s received %q, not a number", id, m.Payload))
				continue
			}
			tr.tally.Received(ServerToClient, id, n)
			continue
		}
		sender, n, ok := parseKey(string(m.Payload))
		if !ok {
			tr.unexpected(fmt.Errorf("the checker received %q, not sender/n", m.Payload))
			continue
		}
		tr.tally.Received(ClientToServer, sender, n)
	}
}

// parseKey parses "sender/n", the payload and idempotency key of a client
// message.
func parseKey(s string) (sender string, n int, ok bool) {
	sender, num, ok := strings.Cut(s, "/")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	return sender, n, err == nil
}

// unexpected keeps the first few errors that the counts do not explain.
func (tr *traffic) unexpected(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.errs) < 10 {
		tr.errs = append(tr.errs, err.Error())
	}
}

// run sends numbered messages in both directions, rate messages per
// second per direction spread over the sessions, until stop is closed.
// It returns at once; wait returns when every sender has finished its
// last message.
func (tr *traffic) run(stop <-chan struct{}, rate int) {
	every := time.Duration(float64(time.Second) * float64(len(tr.ids)) / float64(rate))
	for i, id := range tr.ids {
		tr.gen.Go(func() { tr.paced(stop, every, func(n int) { tr.publish(i, id, n) }) })
		tr.gen.Go(func() { tr.paced(stop, every, func(n int) { tr.send(id, n) }) })
	}
}

// wait waits until every sender has finished.
func (tr *traffic) wait() { tr.gen.Wait() }

// paced calls f with 1, 2, 3… every interval until stop is closed; a
// slow f delays the next call, it never overlaps it.
func (tr *traffic) paced(stop <-chan struct{}, every time.Duration, f func(n int)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		f(n)
	}
}

// publish publishes message n to session id with the Publish RPC and an
// idempotency key, starting at node i and moving to the next node after
// an error or when the session was not reached, until it reached the
// session or giveUp passes. A duplicate answer counts as delivered when
// the earlier attempts' outcome was unknown (errors); after an answer
// that it reached no session, the server has no earlier delivery to
// point at, and the message counts as lost, reported to the publisher.
func (tr *traffic) publish(i int, id string, n int) {
	start := time.Now()
	tr.tally.Sent(ServerToClient, id, id, n, start)
	req := &tetherv1.PublishRequest{
		Target:         &tetherv1.PublishRequest_ClientId{ClientId: id},
		Payload:        []byte(strconv.Itoa(n)),
		IdempotencyKey: "s2c/" + id + "/" + strconv.Itoa(n),
	}
	wait := retryMin
	reachedNone := false
	for attempt := i; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		resp, err := tr.pubs[attempt%len(tr.pubs)].Publish(ctx, req)
		cancel()
		switch {
		case err == nil && resp.GetDelivered() > 0:
			tr.tally.Accepted(ServerToClient, id, n, time.Now())
			return
		case err == nil && resp.GetDuplicate() && !reachedNone:
			return
		case err == nil && resp.GetDuplicate():
			tr.retried("Publish", errors.New("duplicate, after an attempt that reached no session"))
			tr.tally.SenderTold(ServerToClient, id, n)
			return
		case err == nil:
			reachedNone = true
			err = errors.New("delivered to no session")
		}
		tr.retried("Publish", err)
		if time.Since(start) > giveUp {
			tr.tally.SenderTold(ServerToClient, id, n)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, retryMax)
	}
}

// send sends message n of session id to the checker, with Send or with
// SendWait and its retries.
func (tr *traffic) send(id string, n int) {
	key := id + "/" + strconv.Itoa(n)
	m := client.Message{ClientID: checkerID, Payload: []byte(key)}
	if tr.mode != Send {
		// SendWait's caller retries: its key makes the retry a
		// duplicate. Send leaves re-sends to the SDK, whose generated
		// keys are what a Send user has (and what lets the server
		// pipeline the messages, as it does not one with a key of the
		// application's, which it checks first).
		m.IdempotencyKey = key
	}
	s := tr.sessions[id]
	start := time.Now()
	tr.tally.Sent(ClientToServer, id, checkerID, n, start)
	ctx, cancel := context.WithTimeout(context.Background(), giveUp)
	defer cancel()
	if tr.mode == Send {
		if err := s.Send(ctx, m); err != nil {
			tr.tally.SenderTold(ClientToServer, id, n)
		}
		return
	}
	wait := retryMin
	for {
		err := s.SendWait(ctx, m)
		if err == nil {
			return
		}
		tr.retried("SendWait", err)
		if ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
			tr.tally.SenderTold(ClientToServer, id, n)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, retryMax)
	}
}

// retried counts a sender's retry after err, by the call and err's text
// (its first 100 bytes, so that one kind of error is one key).
func (tr *traffic) retried(call string, err error) {
	msg := err.Error()
	if len(msg) > 100 {
		msg = msg[:100] + "…"
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.retries[call+": "+msg]++
}

// serverOfChecker returns the server id of the checker's stream.
func (tr *traffic) serverOfChecker() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.serverOf[checkerID]
}

// settled reports whether every session is connected with nothing queued
// or unacknowledged.
func (tr *traffic) settled() bool {
	for _, s := range tr.sessions {
		st := s.Stats()
		if st.State != client.StateConnected || st.Unacked > 0 || st.Queued > 0 {
			return false
		}
	}
	return true
}

// reconnectTimes returns the reconnect times seen so far, sorted.
func (tr *traffic) reconnectTimes() []time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := slices.Clone(tr.reconnects)
	slices.Sort(out)
	return out
}

// knownPlacements returns how many sessions' servers are known.
func (tr *traffic) knownPlacements() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.serverOf)
}

// placement returns how many sessions each server holds, by server id.
func (tr *traffic) placement() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for id, srv := range tr.serverOf {
		if id != checkerID {
			out[srv]++
		}
	}
	return out
}

// problems returns the sessions that closed for good and the unexpected
// errors.
func (tr *traffic) problems() (closed, errs []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.closed), slices.Clone(tr.errs)
}

// freshCounts returns how many sessions came back without what they held,
// by why.
func (tr *traffic) freshCounts() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return maps.Clone(tr.fresh)
}

// retryCounts returns why senders retried, by kind.
func (tr *traffic) retryCounts() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return maps.Clone(tr.retries)
}

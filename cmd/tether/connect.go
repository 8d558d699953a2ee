package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/profile"
)

// connectFlags are tether connect's own flags.
type connectFlags struct {
	clientID  string
	topics    []string
	profile   string
	heartbeat time.Duration
}

func (a *app) connectCmd() *cobra.Command {
	var f connectFlags
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Hold a session and print its events as JSON lines",
		Long: `connect opens a tether session, subscribed to the --topic values, and
prints every event on stdout as one JSON object per line, until Ctrl-C or
SIGTERM closes the session (a Close frame: the server forgets it) and
connect exits 0. With several --addr values the session picks among the
healthy backends, and moves to another when its backend fails.

  {"event":"state","state":"connecting","time":"…"}
  {"event":"state","state":"connected","backend":"host:port","session_id":"…",
   "resumed":false,"resume_status":"RESUME_STATUS_NOT_REQUESTED","time":"…"}
  {"event":"message","seq":1,"topic":"news","payload":"hi","source_client":"…",
   "time":"…"}
  {"event":"rtt","ms":0.412,"backend":"host:port","time":"…"}
  {"event":"lost","cause":"gap","first":4,"last":6,"session_id":"…",
   "reason":"…","time":"…"}
  {"event":"state","state":"reconnecting","session_id":"…","error":"…","time":"…"}
  {"event":"state","state":"closed","session_id":"…","time":"…"}
  {"event":"error","error":"…","time":"…"}

States are connecting, connected, reconnecting and closed; reconnecting and
closed carry "error" when there is one, a resume that lost messages
carries "lost":{"first":N,"last":M}, and a fresh session that took its
--client-id over from an earlier one carries "took_over":{"session_id":…,
"inherited":N,"dropped":{"first":N,"last":M}}. A "lost" line names server
messages that will never arrive, as soon as the session learns it: cause
"gap" (the server's outbound log for the session overflowed and it
dropped the oldest), "resume" or "take_over". A message shows "payload" when it is
UTF-8 text and "payload_b64" (standard base64) otherwise, and, when set,
topic, content_type, headers, source_session, source_client,
correlation_id and published_at. Messages are acknowledged as they are
printed. If the server ends the session for good (an operator closed it,
or a newer session of the same --client-id took over), connect exits 1.`,
		Example: `  # Hold a session as device dev1, subscribed to news and alerts.
  tether connect --addr 127.0.0.1:7070 --client-id dev1 --topic news --topic alerts

  # Two backends; the session moves to the other when one fails. Mobile
  # liveness profile, a heartbeat (and RTT line) every 10s.
  tether connect --addr 10.0.0.1:7070 --addr 10.0.0.2:7070 --profile mobile --heartbeat 10s

  # Only the message payloads.
  tether connect --client-id dev1 | jq -r 'select(.event == "message") | .payload'`,
		Args: noArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error { return a.connect(cmd.Context(), f) }),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.clientID, "client-id", "", "stable client `id` of the session; a newer session with the same id takes over")
	fl.StringArrayVar(&f.topics, "topic", nil, "subscribe to this `topic`; repeat for several")
	fl.StringVar(&f.profile, "profile", "default", "liveness `profile`: "+strings.Join(profile.Names(), ", "))
	fl.DurationVar(&f.heartbeat, "heartbeat", 0, "ask the server for this heartbeat `interval` instead of the profile's")
	return cmd
}

// connect holds the session until ctx ends (exit 0) or the session ends on
// its own (an error).
func (a *app) connect(ctx context.Context, f connectFlags) error {
	p, err := profile.Lookup(f.profile)
	if err != nil {
		return usagef("--profile: %w", err)
	}
	if f.heartbeat < 0 {
		return usagef("--heartbeat %v: must not be negative", f.heartbeat)
	}
	out := newLines(a.stdout)
	ord := newStateOrder()
	opts := []client.Option{
		client.WithAddrs(a.addrs...),
		client.WithClientID(f.clientID),
		client.WithTopics(f.topics...),
		client.WithProfile(p),
		client.WithOnState(func(c client.StateChange) { ord.printed(c, func() { out.write(newStateEvent(c)) }) }),
		client.WithOnRTT(func(backend string, rtt time.Duration) { out.write(newRTTEvent(backend, rtt, time.Now())) }),
		client.WithOnLoss(func(l client.Loss) { out.write(newLostEvent(l)) }),
	}
	if f.heartbeat > 0 {
		opts = append(opts, client.WithHeartbeat(f.heartbeat))
	}
	opts = append(opts, a.creds.sessionOptions()...)
	s, err := client.New(opts...)
	if err != nil {
		return usageError{err}
	}

	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	recvErr := make(chan error, 1)
	go func() { recvErr <- receive(recvCtx, s, out, ord) }()

	var ended error // why the session ended without being asked to
	select {
	case <-ctx.Done():
		stopRecv()
		<-recvErr
	case <-out.failed:
		ended = fmt.Errorf("writing to stdout: %w", out.failure())
		stopRecv()
		<-recvErr
	case err := <-recvErr:
		if ctx.Err() == nil {
			ended = fmt.Errorf("the session ended: %s", oneLine(err))
		}
	}

	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	if err := closeAndWait(closeCtx, s); err != nil { // the closed line is written before it returns
		err = fmt.Errorf("closing the session (--timeout %v): %w", a.timeout, err)
		out.write(newErrorEvent(err, time.Now()))
		return err
	}
	if ended != nil {
		out.write(newErrorEvent(ended, time.Now()))
	}
	return ended
}

// receive prints the session's messages until ctx ends or the session
// closes, each after the state lines of what happened before it. Receive
// acks each message it returns.
func receive(ctx context.Context, s *client.Session, out *lines, ord *stateOrder) error {
	for {
		m, err := s.Receive(ctx)
		if err != nil {
			return err
		}
		st := s.Stats()
		ord.await(ctx, stateKey(st.State, st.Reconnects))
		out.write(newMessageEvent(m, time.Now()))
	}
}

// stateOrder keeps connect's lines in the order things happened. The SDK
// calls OnState on a goroutine of its own, a moment after the state
// changed, while Receive may already return what the new stream brought:
// without it, a resume's replayed messages could be printed before its
// connected line.
type stateOrder struct {
	mu         sync.Mutex
	reconnects int           // reconnecting lines printed
	key        int           // stateKey of the state lines printed, -1 before any
	changed    chan struct{} // closed and replaced after each state line
}

func newStateOrder() *stateOrder { return &stateOrder{key: -1, changed: make(chan struct{})} }

// stateKey numbers the session's states in the order they come: every
// reconnecting counts one more reconnect, and connected follows it.
func stateKey(state client.State, reconnects int) int {
	k := 2 * reconnects
	if state == client.StateConnected {
		k++
	}
	return k
}

// printed prints c's line with print, then lets the messages that waited
// for it through. Calls come in the order of the state changes.
func (o *stateOrder) printed(c client.StateChange, print func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	print()
	if c.State == client.StateReconnecting {
		o.reconnects++
	}
	o.key = max(o.key, stateKey(c.State, o.reconnects))
	close(o.changed)
	o.changed = make(chan struct{})
}

// await waits until the state lines up to key are printed, for a second
// at most: a message is never held back for long.
func (o *stateOrder) await(ctx context.Context, key int) {
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		o.mu.Lock()
		done, changed := o.key >= key, o.changed
		o.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}

// closeAndWait closes s and waits, up to ctx, until its last callback (the
// closed state's line) has returned.
func closeAndWait(ctx context.Context, s *client.Session) error {
	if err := s.Close(ctx); err != nil {
		return err
	}
	select {
	case <-s.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

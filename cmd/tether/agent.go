package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tetherhq/tether/agent"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/profile"
)

// agentFlags are tether agent's own flags.
type agentFlags struct {
	socket, http      string
	clientID          string
	topics            []string
	profile           string
	buffer            int
	bufferBytes       int64
	maxBody           int64
	requestTimeout    time.Duration
	maxRequestTimeout time.Duration
	maxInFlight       int
	callerLimit       int
}

// listenEvent says where the agent serves.
type listenEvent struct {
	Event    string `json:"event"` // "listening"
	Socket   string `json:"socket,omitempty"`
	HTTP     string `json:"http,omitempty"`
	ClientID string `json:"client_id"`
	Time     string `json:"time"`
}

func (a *app) agentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Lend one session to local processes over a Unix socket (HTTP/JSON, SSE)",
		Long: `agent holds one tether session (failover, resume, buffering, idempotency
keys) and lends it to short-lived local processes (PHP-FPM workers, cron
jobs, scripts) over HTTP/JSON on a Unix socket, created mode 0600 so only
this user can use it, and optionally on a loopback port (--http; any local
user can reach a port). The API:

  POST /v1/publish  {"topic"|"session_id"|"client_id":"…","payload":"…","wait":true}
                    202 once queued; with "wait", 200 {"acked":true} once the server has it
  POST /v1/request  {"topic":"svc.echo","payload":"…","timeout":"5s"}
                    200 the reply: {"payload":"…","source_client":"…",…}
  GET  /v1/events   Server-Sent Events: messages sent to this session (for
                    example to its --client-id) and state changes, each with
                    an id; send Last-Event-ID to resume after a reconnect
  GET  /v1/status   state, backend, RTT, reconnects, last resume outcome

POST bodies need Content-Type: application/json (curl --json). Requests
from browsers are refused: any Origin header, Sec-Fetch-Site cross-site or
same-site, and on --http a Host that is not loopback or localhost. Event
ids start at the agent's start time in microseconds, so after a restart a
reader's old Last-Event-ID is reported unknown. On --http each connection
is a caller of its own: only --max-in-flight really bounds a process there.
Binary payloads go as "payload_b64". Errors are 4xx/5xx with
{"error":"…","retryable":bool}; a request in flight when the session had to
start afresh on another backend fails with 503 and "retryable":true, never
twice. stdout gets one JSON line per event: where it listens, then the
session's state changes. Ctrl-C or SIGTERM waits for the calls in flight
(up to --timeout) and closes the session.`,
		Example: `  # Serve on a socket, two backends.
  tether agent --addr 127.0.0.1:7070 --addr 127.0.0.1:7071 --client-id web-1 --socket /tmp/tether.sock

  # Request/reply through it (a responder: tether reply svc.echo).
  curl --unix-socket /tmp/tether.sock --json '{"topic":"svc.echo","payload":"hi"}' http://agent/v1/request

  # Publish and wait for the server's ack.
  curl --unix-socket /tmp/tether.sock --json '{"topic":"news","payload":"hi","wait":true}' http://agent/v1/publish

  # Follow the messages sent to client id web-1.
  curl -N --unix-socket /tmp/tether.sock http://agent/v1/events`,
		Args: noArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error { return a.agent(cmd.Context(), f) }),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.socket, "socket", "", "Unix socket `path` to serve on, created mode 0600 (default $XDG_RUNTIME_DIR/tether-agent.sock)")
	fl.StringVar(&f.http, "http", "", "also serve on this loopback `host:port` (127.0.0.1, [::1] or localhost only)")
	fl.StringVar(&f.clientID, "client-id", "", "client `id` of the session, where others send it messages (default agent-HOSTNAME)")
	fl.StringArrayVar(&f.topics, "topic", nil, "subscribe to this `topic` (its messages appear on /v1/events); repeat for several")
	fl.StringVar(&f.profile, "profile", "default", "liveness `profile`: "+strings.Join(profile.Names(), ", "))
	fl.IntVar(&f.buffer, "buffer", 1024, "`events` kept for /v1/events readers that reconnect")
	fl.Int64Var(&f.bufferBytes, "buffer-bytes", 64<<20, "`bytes` of events kept for /v1/events readers (the oldest go first)")
	fl.Int64Var(&f.maxBody, "max-body", 2<<20, "largest request body, in `bytes`")
	fl.DurationVar(&f.requestTimeout, "request-timeout", 30*time.Second, "how long a request waits for its reply when it names no \"timeout\"")
	fl.DurationVar(&f.maxRequestTimeout, "max-request-timeout", 5*time.Minute, "the longest \"timeout\" a request may ask for")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 1024, "calls in flight on the agent; beyond: 503")
	fl.IntVar(&f.callerLimit, "caller-limit", 256, "calls in flight per calling process (on --http, per connection); beyond: 429")
	return cmd
}

// agentSocket is --socket, or its default.
func agentSocket(f agentFlags) (string, error) {
	if f.socket != "" {
		return f.socket, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "tether-agent.sock"), nil
	}
	return "", usagef("--socket: give a path ($XDG_RUNTIME_DIR is not set, so there is no default)")
}

// agent serves until ctx ends (exit 0) or the session ends on its own.
func (a *app) agent(ctx context.Context, f agentFlags) error {
	p, err := profile.Lookup(f.profile)
	if err != nil {
		return usagef("--profile: %w", err)
	}
	sock, err := agentSocket(f)
	if err != nil {
		return err
	}
	if f.clientID == "" {
		host, _ := os.Hostname()
		f.clientID = "agent-" + host
	}
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	if f.http != "" {
		l, err := agent.ListenLoopback(f.http)
		if err != nil {
			return usageError{err}
		}
		listeners = append(listeners, l)
	}
	l, err := agent.ListenUnix(sock)
	if err != nil {
		closeAll()
		return err
	}
	listeners = append([]net.Listener{l}, listeners...)
	out := newLines(a.stdout)
	ended := make(chan error, 1)
	sessionOpts := []client.Option{client.WithAddrs(a.addrs...), client.WithClientID(f.clientID), client.WithTopics(f.topics...), client.WithProfile(p)}
	sessionOpts = append(sessionOpts, a.creds.sessionOptions()...)
	ag, err := agent.New(sessionOpts,
		agent.WithBuffer(f.buffer), agent.WithBufferBytes(f.bufferBytes), agent.WithMaxBody(f.maxBody),
		agent.WithRequestTimeout(f.requestTimeout, f.maxRequestTimeout),
		agent.WithLimits(f.maxInFlight, f.callerLimit),
		agent.WithOnState(func(c client.StateChange) {
			out.write(newStateEvent(c))
			if c.State == client.StateClosed && c.Err != nil {
				ended <- fmt.Errorf("the session ended: %s", oneLine(c.Err))
			}
		}))
	if err != nil {
		closeAll()
		return usageError{err}
	}
	served := make(chan error, len(listeners))
	for _, l := range listeners {
		ev := listenEvent{Event: "listening", ClientID: f.clientID, Time: timestamp(time.Now())}
		if _, ok := l.Addr().(*net.UnixAddr); ok {
			ev.Socket = l.Addr().String()
		} else {
			ev.HTTP = l.Addr().String()
		}
		out.write(ev)
		go func() { served <- ag.Serve(l) }()
	}

	var failed error
	running := len(listeners)
	select {
	case <-ctx.Done():
	case failed = <-ended:
	case err := <-served:
		running--
		failed = fmt.Errorf("serving: %w", err)
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	if err := ag.Shutdown(closeCtx); err != nil && !errors.Is(err, client.ErrClosed) {
		failed = errors.Join(failed, fmt.Errorf("shutting down (--timeout %v): %w", a.timeout, err))
	}
	closeAll() // Shutdown closed them; this removes nothing twice
	for range running {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && failed == nil {
			failed = fmt.Errorf("serving: %w", err)
		}
	}
	if failed != nil {
		out.write(newErrorEvent(failed, time.Now()))
	}
	return failed
}

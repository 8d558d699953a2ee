package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tetherhq/tether/agent"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/profile"
)

// replyFlags are tether reply's own flags.
type replyFlags struct {
	command        string
	concurrency    int
	commandTimeout time.Duration
	maxOutput      int
	clientID       string
	profile        string
}

// stderrTail is how much of a failing command's stderr its error reply
// carries.
const stderrTail = 1024

// replyEvent is one answered request.
type replyEvent struct {
	Event         string  `json:"event"` // "reply"
	CorrelationID string  `json:"correlation_id"`
	SourceClient  string  `json:"source_client,omitempty"`
	ExitStatus    *int    `json:"exit_status,omitempty"`
	Error         string  `json:"error,omitempty"`
	MS            float64 `json:"ms"`
	Time          string  `json:"time"`
}

func (a *app) replyCmd() *cobra.Command {
	var f replyFlags
	cmd := &cobra.Command{
		Use:   "reply TOPIC",
		Short: "Answer the requests sent to a topic, with a command or as an echo",
		Long: `reply holds a session subscribed to TOPIC and answers every request (a
message with a correlation id) sent there: it runs --command with sh -c,
the payload on stdin, and replies with what the command wrote on stdout.
Without --command it replies with the payload itself (an echo).

The command also sees TETHER_TOPIC, TETHER_CORRELATION_ID,
TETHER_SOURCE_CLIENT, TETHER_SOURCE_SESSION and TETHER_CONTENT_TYPE, and
the rest of tether reply's environment except its secrets: $TETHER_TOKEN,
and any variable whose value is the token in use, are left out. The
command runs in a process group of its own, killed when the command exits:
background children do not outlive it. A command that exits non-zero,
runs longer than --command-timeout (it is killed, with its process group)
or writes more than --max-output bytes gets an error reply, never silence:
the reply carries the header "tether-error" (the exit status and the tail
of stderr, as valid UTF-8), "tether-exit-status", and the stdout written
so far; tether agent turns it into a 502. Commands still running when
tether reply stops (Ctrl-C) get --timeout to finish; then they are killed
and their requests get an error reply. At most
--concurrency commands run at once; further requests wait at the server.

Every answered request is one JSON line on stdout:

  {"event":"reply","correlation_id":"…","source_client":"…","exit_status":0,"ms":3.1,"time":"…"}

with the session's state lines as tether connect prints them. With the
in-memory broker, a responder reaches requests sent on its own node: run
one per node. Every responder on a topic gets each request; the requester
takes the first reply.`,
		Example: `  # Upper-case every payload sent to svc.echo.
  tether reply svc.echo --command 'tr a-z A-Z'

  # Echo, four at a time, as client id echo-1.
  tether reply svc.echo --concurrency 4 --client-id echo-1

  # A JSON service with a deadline.
  tether reply svc.lookup --command 'jq -c .' --command-timeout 5s`,
		Args: exactlyOneArg("the topic"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error { return a.reply(cmd.Context(), args[0], f) }),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.command, "command", "", "shell `command` run for each request (sh -c), payload on stdin, stdout the reply; default: echo the payload")
	fl.IntVar(&f.concurrency, "concurrency", 8, "`requests` handled at once")
	fl.DurationVar(&f.commandTimeout, "command-timeout", 30*time.Second, "kill a command running longer and reply with an error")
	fl.IntVar(&f.maxOutput, "max-output", 1<<20, "largest reply a command may write, in `bytes`")
	fl.StringVar(&f.clientID, "client-id", "", "stable client `id` of the responder's session")
	fl.StringVar(&f.profile, "profile", "default", "liveness `profile`: "+strings.Join(profile.Names(), ", "))
	return cmd
}

func (f replyFlags) check() error {
	switch {
	case f.concurrency < 1:
		return usagef("--concurrency %d: must be at least 1", f.concurrency)
	case f.commandTimeout <= 0:
		return usagef("--command-timeout %v: must be positive", f.commandTimeout)
	case f.maxOutput < 1:
		return usagef("--max-output %d: must be positive", f.maxOutput)
	}
	return nil
}

// reply answers requests until ctx ends (exit 0) or the session ends.
func (a *app) reply(ctx context.Context, topic string, f replyFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	p, err := profile.Lookup(f.profile)
	if err != nil {
		return usagef("--profile: %w", err)
	}
	out := newLines(a.stdout)
	opts := []client.Option{
		client.WithAddrs(a.addrs...), client.WithClientID(f.clientID), client.WithTopics(topic), client.WithProfile(p),
		client.WithOnState(func(c client.StateChange) { out.write(newStateEvent(c)) }),
	}
	opts = append(opts, a.creds.sessionOptions()...)
	s, err := client.New(opts...)
	if err != nil {
		return usageError{err}
	}
	// Commands and replies outlive ctx by --timeout at most: a Ctrl-C lets
	// the running ones answer.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	r := &responder{s: s, f: f, topic: topic, out: out, slots: make(chan struct{}, f.concurrency), timeout: a.timeout, token: a.creds.token}
	ended := r.serve(ctx, work)

	wait := make(chan struct{})
	go func() { r.wg.Wait(); close(wait) }()
	grace := time.NewTimer(a.timeout)
	defer grace.Stop()
	select {
	case <-wait:
	case <-grace.C:
		stopWork()
		<-wait
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	if err := closeAndWait(closeCtx, s); err != nil {
		return fmt.Errorf("closing the session (--timeout %v): %w", a.timeout, err)
	}
	if ended != nil {
		out.write(newErrorEvent(ended, time.Now()))
	}
	return ended
}

// responder runs tether reply's requests.
type responder struct {
	s       *client.Session
	f       replyFlags
	topic   string
	out     *lines
	slots   chan struct{} // one per running request
	wg      sync.WaitGroup
	timeout time.Duration
	token   string // the session's token: kept from the commands
}

// serve receives requests until ctx ends (nil) or the session ends (its
// error), handling each in a slot; work bounds the handling.
func (r *responder) serve(ctx, work context.Context) error {
	for {
		select { // a free slot before the next message: the rest wait at the server
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		m, err := r.s.Receive(ctx)
		if err != nil {
			<-r.slots
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the session ended: %s", oneLine(err))
		}
		if m.CorrelationID == "" {
			<-r.slots
			r.out.write(newErrorEvent(fmt.Errorf("ignored message %d from %q: no correlation id, so not a request", m.Seq, m.SourceClient), time.Now()))
			continue
		}
		r.wg.Go(func() {
			defer func() { <-r.slots }()
			r.handle(work, m)
		})
	}
}

// handle answers one request, always: with the command's output, or with
// an error reply.
func (r *responder) handle(ctx context.Context, m *client.Message) {
	start := time.Now()
	// Headers and the content type must be valid UTF-8 for the reply to be
	// sent at all: whatever goes there is made so.
	reply := client.Message{CorrelationID: m.CorrelationID, Payload: m.Payload, ContentType: validUTF8(m.ContentType)}
	ev := replyEvent{Event: "reply", CorrelationID: m.CorrelationID, SourceClient: m.SourceClient}
	if r.f.command != "" {
		reply.ContentType = ""
		stdout, status, failure := r.run(ctx, m)
		reply.Payload = stdout
		if status >= 0 {
			ev.ExitStatus = &status
		}
		if failure != "" {
			failure = validUTF8(failure)
			reply.Headers = map[string]string{agent.ReplyErrorHeader: failure, "tether-exit-status": strconv.Itoa(status)}
			ev.Error = failure
		}
	}
	// Not cancelled by a shutdown: a command killed by it still gets its
	// error reply, within --timeout.
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	if err := r.s.SendWait(sendCtx, reply); err != nil {
		ev.Error = strings.TrimPrefix(ev.Error+"; ", "; ") + "sending the reply: " + oneLine(err)
	}
	ev.MS = float64(time.Since(start).Microseconds()) / 1000
	ev.Time = timestamp(time.Now())
	r.out.write(ev)
}

// ioGrace is how long run waits, once the command's process group is
// killed, for the processes outside it (a daemon that left the group)
// still holding the command's pipes before closing them.
const ioGrace = time.Second

// run runs the command for m and returns its stdout, its exit status (-1
// when it did not exit by itself) and, when it failed, why. When the
// shell exits, its process group is killed whatever the outcome:
// background children do not outlive the request, nor hold its reply.
func (r *responder) run(ctx context.Context, m *client.Message) (stdout []byte, status int, failure string) {
	ctx, cancel := context.WithTimeout(ctx, r.f.commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", r.f.command)
	out := &capped{max: r.f.maxOutput}
	errTail := &tail{max: stderrTail}
	cmd.Env = append(commandEnv(os.Environ(), r.token), "TETHER_TOPIC="+r.topic, "TETHER_CORRELATION_ID="+m.CorrelationID,
		"TETHER_SOURCE_CLIENT="+m.SourceClient, "TETHER_SOURCE_SESSION="+m.SourceSession, "TETHER_CONTENT_TYPE="+m.ContentType)
	killGroup(cmd)
	cmd.WaitDelay = time.Second // after a cancel, the group gets this long to die
	// Pipes of our own, not exec's copying goroutines: Wait then returns
	// when the shell exits, whoever else holds the pipes.
	p, err := newPipes()
	if err != nil {
		return nil, -1, fmt.Sprintf("running the command: %v", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.stdinR, p.stdoutW, p.stderrW
	err = cmd.Start()
	p.closeChildEnds()
	if err != nil {
		p.closeOurEnds()
		return nil, -1, fmt.Sprintf("running the command: %v", err)
	}
	copied := p.copy(m.Payload, out, errTail)
	err = cmd.Wait()
	endGroup(cmd)
	grace := time.NewTimer(ioGrace)
	select {
	case <-copied:
	case <-grace.C:
		p.closeOurEnds()
		<-copied
	}
	grace.Stop()
	p.closeOurEnds()
	stdout, status = out.buf.Bytes(), cmd.ProcessState.ExitCode()
	return stdout, status, r.failure(ctx.Err(), err, cmd.ProcessState, out.over, errTail)
}

// failure says why a command failed, or "" when it did not. A command
// that exited by itself is judged by its exit status, even when its
// deadline passed meanwhile.
func (r *responder) failure(ctxErr, err error, ps *os.ProcessState, over bool, errTail *tail) string {
	var exitErr *exec.ExitError
	exited := ps != nil && ps.Exited()
	switch {
	case !exited && errors.Is(ctxErr, context.DeadlineExceeded):
		return fmt.Sprintf("the command ran longer than %v and was killed%s", r.f.commandTimeout, errTail.suffix())
	case !exited && errors.Is(ctxErr, context.Canceled):
		return fmt.Sprintf("tether reply is shutting down: the command was killed%s", errTail.suffix())
	case errors.As(err, &exitErr) && exited && ps.ExitCode() > 0:
		return fmt.Sprintf("exit status %d%s", ps.ExitCode(), errTail.suffix())
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		return fmt.Sprintf("running the command: %v%s", err, errTail.suffix())
	case over:
		return fmt.Sprintf("the command wrote more than %d bytes (--max-output): reply cut", r.f.maxOutput)
	}
	return ""
}

// commandEnv is env without the secrets of tether reply's own session:
// $TETHER_TOKEN, and any variable holding the token it uses (--token).
func commandEnv(env []string, token string) []string {
	kept := env[:0:0]
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == envToken || (token != "" && v == token) {
			continue
		}
		kept = append(kept, kv)
	}
	return kept
}

// pipes are a command's stdin, stdout and stderr: the child's ends and
// ours.
type pipes struct {
	stdinR, stdinW, stdoutR, stdoutW, stderrR, stderrW *os.File
	closeOnce                                          sync.Once
}

func newPipes() (*pipes, error) {
	var p pipes
	var err error
	var files []*os.File
	for _, pair := range [][2]**os.File{{&p.stdinR, &p.stdinW}, {&p.stdoutR, &p.stdoutW}, {&p.stderrR, &p.stderrW}} {
		if *pair[0], *pair[1], err = os.Pipe(); err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files = append(files, *pair[0], *pair[1])
	}
	return &p, nil
}

// closeChildEnds closes the ends the child has its copies of.
func (p *pipes) closeChildEnds() {
	p.stdinR.Close()
	p.stdoutW.Close()
	p.stderrW.Close()
}

// closeOurEnds closes our ends, once: blocked reads and writes on them
// return.
func (p *pipes) closeOurEnds() {
	p.closeOnce.Do(func() {
		p.stdinW.Close()
		p.stdoutR.Close()
		p.stderrR.Close()
	})
}

// copy writes payload to the command's stdin and reads its stdout and
// stderr into out and errs; the channel closes when all three are done
// (at end of file, or when our ends are closed).
func (p *pipes) copy(payload []byte, out, errs io.Writer) <-chan struct{} {
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = p.stdinW.Write(payload) // a command that does not read its stdin: EPIPE
		_ = p.stdinW.Close()
	})
	wg.Go(func() { _, _ = io.Copy(out, p.stdoutR) })
	wg.Go(func() { _, _ = io.Copy(errs, p.stderrR) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}

// capped keeps the first max bytes written and drops the rest, so the
// command never blocks on a full pipe.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.over = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

// validUTF8 is s with each invalid UTF-8 sequence replaced by U+FFFD.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// tail keeps the last max bytes written, cut on a rune boundary.
type tail struct {
	b   []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		cut := len(t.b) - t.max
		for n := 0; n < utf8.UTFMax-1 && cut < len(t.b) && !utf8.RuneStart(t.b[cut]); n++ {
			cut++ // not in the middle of a character
		}
		t.b = append(t.b[:0], t.b[cut:]...)
	}
	return len(p), nil
}

// suffix is ": " and the tail on one line, or "" when stderr was empty.
func (t *tail) suffix() string {
	s := validUTF8(strings.Join(strings.Fields(string(t.b)), " "))
	if s == "" {
		return ""
	}
	return ": " + s
}

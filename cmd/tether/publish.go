package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// publishFlags are tether publish's own flags.
type publishFlags struct {
	topic, session, clientID string
	data                     string
	contentType              string
	headers                  []string
	idempotencyKey           string
	correlationID            string
}

// publishResult is what publish prints.
type publishResult struct {
	Delivered uint32 `json:"delivered"`
	Duplicate bool   `json:"duplicate"`
}

func (a *app) publishCmd() *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish one message to a topic, a session or a client id",
		Long: `publish delivers one message through TetherService.Publish, to exactly one
of --topic, --session or --client-id, and prints how many sessions it
reached:

  {"delivered":1,"duplicate":false}

A message to a topic that reaches no subscriber is not an error. One to a
--session or --client-id that reaches no session prints {"delivered":0,…}
and exits 1, saying why on stderr (with the in-memory broker, a node
reaches only the sessions it holds). The payload is --data, or else all of
stdin. A repeat of an --idempotency-key within the server's dedupe window
delivers nothing, prints "duplicate":true and exits 0.`,
		Example: `  # To the live session of client dev1.
  tether publish --addr 127.0.0.1:7070 --client-id dev1 --data hi

  # To every subscriber of news, a JSON payload from stdin; a retry with
  # the same key within the dedupe window delivers nothing twice.
  echo '{"title":"tether 1.0"}' | tether publish --topic news \
      --content-type application/json --header source=ci --idempotency-key release-1.0

  # To one session, by id (see tether sessions list).
  tether publish --session 1b48480c4efbb3238390c90d39a9fd6d --data ping`,
		Args: noArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			return a.publish(cmd.Context(), f, cmd.Flags().Changed)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "publish to every session subscribed to this `topic`")
	fl.StringVar(&f.session, "session", "", "publish to the session with this `id`")
	fl.StringVar(&f.clientID, "client-id", "", "publish to the live session of this client `id`")
	fl.StringVar(&f.data, "data", "", "the `payload`; without it, stdin is read to the end")
	fl.StringVar(&f.contentType, "content-type", "", "MIME `type` of the payload, passed through")
	fl.StringArrayVar(&f.headers, "header", nil, "application header `key=value`, passed through; repeat for several")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "`key` that makes a repeat within the dedupe window a no-op")
	fl.StringVar(&f.correlationID, "correlation-id", "", "correlation `id`, passed through (for tracing)")
	return cmd
}

// request builds the PublishRequest from the flags (changed reports
// whether a flag was given), without the payload.
func (f publishFlags) request(changed func(string) bool) (*tetherv1.PublishRequest, error) {
	req := &tetherv1.PublishRequest{ContentType: f.contentType, IdempotencyKey: f.idempotencyKey, CorrelationId: f.correlationID}
	var set []string
	for _, t := range []struct{ name, value string }{{"topic", f.topic}, {"session", f.session}, {"client-id", f.clientID}} {
		if !changed(t.name) {
			continue
		}
		if t.value == "" {
			return nil, usagef("--%s: must not be empty", t.name)
		}
		set = append(set, "--"+t.name)
	}
	switch {
	case len(set) == 0:
		return nil, usagef("no target: give exactly one of --topic, --session or --client-id")
	case len(set) > 1:
		return nil, usagef("give exactly one of --topic, --session or --client-id; got %s", strings.Join(set, " and "))
	case f.topic != "":
		req.Target = &tetherv1.PublishRequest_Topic{Topic: f.topic}
	case f.session != "":
		req.Target = &tetherv1.PublishRequest_SessionId{SessionId: f.session}
	default:
		req.Target = &tetherv1.PublishRequest_ClientId{ClientId: f.clientID}
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, usagef("--header %q: want key=value", h)
		}
		if req.Headers == nil {
			req.Headers = make(map[string]string)
		}
		req.Headers[k] = v
	}
	return req, nil
}

func (a *app) publish(ctx context.Context, f publishFlags, changed func(string) bool) error {
	req, err := f.request(changed)
	if err != nil {
		return err
	}
	cc, err := a.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	if changed("data") {
		req.Payload = []byte(f.data)
	} else if req.Payload, err = readAll(ctx, a.stdin); err != nil {
		return fmt.Errorf("reading the payload from stdin: %w", err)
	}
	ctx, cancel := a.callCtx(ctx)
	defer cancel()
	resp, err := tetherv1.NewTetherServiceClient(cc).Publish(ctx, req)
	if err != nil {
		return rpcError(a.addrs[0], "publish", err)
	}
	out := newLines(a.stdout)
	out.write(publishResult{Delivered: resp.GetDelivered(), Duplicate: resp.GetDuplicate()})
	if err := out.failure(); err != nil {
		return err
	}
	if resp.GetDelivered() == 0 && !resp.GetDuplicate() && req.GetTopic() == "" {
		return undelivered(a.addrs[0], f)
	}
	return nil
}

// undelivered explains a message to a session or client id that reached
// no session: exit status 1.
func undelivered(addr string, f publishFlags) error {
	target := fmt.Sprintf("session %q", f.session)
	if f.clientID != "" {
		target = fmt.Sprintf("client id %q", f.clientID)
	}
	return fmt.Errorf("nothing was delivered: %s has no session that %s can reach, and the message was dropped. "+
		"With --broker nats, no node holds such a session (it ended, or never existed); with --broker memory (the default), "+
		"a node reaches only its own sessions: publish through the node that holds it (tether sessions list --addr NODE)", target, addr)
}

// readAll reads r to the end, or until ctx ends (the read then goes on in
// the background: stdin cannot be interrupted).
func readAll(ctx context.Context, r io.Reader) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	if r == nil {
		return nil, nil
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

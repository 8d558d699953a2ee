package main

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

// A message to a session or client id that reaches nobody exits 1 and
// says why; one to a topic without subscribers is no failure.
func TestPublishUndelivered(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	for _, target := range [][]string{{"--client-id", "nobody"}, {"--session", "0123456789abcdef0123456789abcdef"}} {
		code, stdout, stderr := tether(t, "", append([]string{"publish", "--addr", addr, "--data", "x"}, target...)...)
		if code != exitFailure || stdout != "{\"delivered\":0,\"duplicate\":false}\n" ||
			!strings.Contains(stderr, "nothing was delivered") || !strings.Contains(stderr, "--broker nats") {
			t.Errorf("publish %v: exit %d, stdout %q, stderr %q; want 1, delivered 0 and why", target, code, stdout, stderr)
		}
	}
	if out := mustTether(t, "", "publish", "--addr", addr, "--topic", "empty", "--data", "x"); out != "{\"delivered\":0,\"duplicate\":false}\n" {
		t.Errorf("publish to a topic without subscribers printed %q", out)
	}
}

// An oversized payload's error names the limit, its flag and the welcome
// field, whether tetherd's check or gRPC's receive limit refuses it.
func TestPublishTooLarge(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t, server.WithMaxMessageBytes(1024))
	for size, want := range map[int]string{
		2000:    "payload of 2000 bytes exceeds the limit of 1024 bytes (Welcome.limits.max_message_bytes): split it, or raise the limit (tetherd --max-message-bytes",
		200_000: "is larger than the server accepts: 66560 bytes, the payload limit (tetherd --max-message-bytes, which welcome.limits.maxMessageBytes announces) plus 65536 for the frame",
	} {
		code, stdout, stderr := tether(t, strings.Repeat("x", size), "publish", "--addr", addr, "--topic", "t")
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, want) {
			t.Errorf("publish of %d bytes: exit %d, stdout %q, stderr %q; want 1 and %q", size, code, stdout, stderr, want)
		}
	}
}

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/natstest"
)

// TestNATSBroker runs two tetherd nodes on one embedded NATS server: a
// message published on one reaches a session on the other, and /readyz
// follows the broker's health through a NATS outage.
func TestNATSBroker(t *testing.T) {
	ns := natstest.Start(t)
	node := func(id string) *tetherd {
		return startTetherd(t, nil, "--broker", "nats", "--nats-url", ns.URL(), "--server-id", id,
			"--drain-window", "1s", "--drain-grace", "10s")
	}
	a, b := node("a"), node("b")
	a.waitLog(map[string]string{"msg": "broker connected", "broker": "nats"})

	s := connect(t, dial(t, a.grpcAddr), "alice")
	pub := tetherv1.NewTetherServiceClient(dial(t, b.grpcAddr))
	publish := func(payload string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: "alice"}, Payload: []byte(payload)}
		if _, err := pub.Publish(ctx, req); err != nil {
			t.Fatalf("Publish %q via b to alice on a: %v", payload, err)
		}
	}
	publish("across")
	if m := s.waitMessage(t); string(m.GetPayload()) != "across" {
		t.Errorf("alice got %q; want \"across\"", m.GetPayload())
	}

	for _, td := range []*tetherd{a, b} {
		waitReadyz(t, td, http.StatusOK, "ready")
	}
	ns.Shutdown()
	for _, td := range []*tetherd{a, b} {
		waitReadyz(t, td, http.StatusServiceUnavailable, "broker unavailable")
		td.waitLog(map[string]string{"msg": "broker unavailable", "broker": "nats", "level": "WARN"})
		waitState(t, "http://"+td.adminAddr+"/console/api/overview", `"broker":{"name":"nats","ok":false,"error":"`)
	}
	ns.Restart(t)
	for _, td := range []*tetherd{a, b} {
		waitReadyz(t, td, http.StatusOK, "ready")
		td.waitLog(map[string]string{"msg": "broker available again", "broker": "nats", "level": "INFO"})
		waitState(t, "http://"+td.adminAddr+"/console/api/overview", `"broker":{"name":"nats","ok":true}`)
	}
	// Routing works again after the outage.
	publish("after the outage")
	if m := s.waitMessage(t); string(m.GetPayload()) != "after the outage" {
		t.Errorf("alice got %q; want \"after the outage\"", m.GetPayload())
	}
	a.stop()
	b.stop()
}

// TestNATSUnreachable checks that tetherd with --broker nats fails to start,
// with exit status 1 and the URL in its message, when no NATS server
// answers.
func TestNATSUnreachable(t *testing.T) {
	clearEnv(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	stderr := newOutput()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	err = run(ctx, []string{"--log-format", "json", "--listen", "127.0.0.1:0", "--admin-listen", "", "--broker", "nats", "--nats-url", url}, io.Discard, stderr)
	if code := exitCode(err); code != 1 {
		t.Errorf("exit status %d (%v); want 1", code, err)
	}
	if !strings.Contains(stderr.String(), url) {
		t.Errorf("stderr does not name %s:\n%s", url, stderr)
	}
}

// waitReadyz polls td's /readyz until it answers code with a body that
// contains want, and fails the test if it does not within waitLong.
func waitReadyz(t *testing.T, td *tetherd, code int, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		got, body := httpGet(t, http.DefaultClient, "http://"+td.adminAddr+"/readyz")
		if got == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q for %v; want %d with %q", got, body, waitLong, code, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMessage skips frames until a message and returns it.
func (s *session) waitMessage(t *testing.T) *tetherv1.ServerMessage {
	t.Helper()
	for {
		if m := s.next(t).GetMessage(); m != nil {
			return m
		}
	}
}

// TestNATSDurabilityNode runs two tetherd nodes with --nats-durability
// node: the setting is logged, and a message published on one reaches a
// session on the other over core NATS.
func TestNATSDurabilityNode(t *testing.T) {
	ns := natstest.Start(t)
	node := func(id string) *tetherd {
		return startTetherd(t, nil, "--broker", "nats", "--nats-url", ns.URL(), "--server-id", id, "--nats-durability", "node",
			"--drain-window", "1s", "--drain-grace", "10s")
	}
	a, b := node("a"), node("b")
	for _, td := range []*tetherd{a, b} {
		td.waitLog(map[string]string{"msg": "broker connected", "broker": "nats", "durability": "node"})
	}
	s := connect(t, dial(t, a.grpcAddr), "alice")
	pub := tetherv1.NewTetherServiceClient(dial(t, b.grpcAddr))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_ClientId{ClientId: "alice"}, Payload: []byte("across")}
	if _, err := pub.Publish(ctx, req); err != nil {
		t.Fatalf("Publish via b to alice on a: %v", err)
	}
	if m := s.waitMessage(t); string(m.GetPayload()) != "across" {
		t.Errorf("alice got %q; want \"across\"", m.GetPayload())
	}
	a.stop()
	b.stop()
}

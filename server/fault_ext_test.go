package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/faultproxy"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// TestBlackholedClientIsDeclaredDeadAndResumes puts a real TCP proxy
// between client and server and silently drops every byte, as a NAT that
// forgot the mapping would: no FIN, no RST. The server must notice by
// heartbeat alone and keep the session for a resume.
func TestBlackholedClientIsDeclaredDeadAndResumes(t *testing.T) {
	t.Parallel()
	n := startNode(t, server.WithProfile(profile.Datacenter()))
	p, err := faultproxy.Start(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cc, err := grpc.NewClient(p.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	via := &node{srv: n.srv, addr: p.Addr(), cc: cc}

	c := via.dial(t, "")
	// The fastest heartbeat the datacenter profile grants: 1s × 3 + 500ms.
	w := c.open(&tetherv1.Hello{ClientId: "bh", HeartbeatInterval: durationpbNew(time.Second)})
	if w.GetDeadAfter().AsDuration() != 3500*time.Millisecond {
		t.Fatalf("dead_after = %v", w.GetDeadAfter().AsDuration())
	}
	p.Blackhole(true)
	waitFor(t, func() bool { return n.state(t, w.GetSessionId()) == tetherv1.SessionState_SESSION_STATE_DETACHED })
	r, err := n.admin().GetSession(context.Background(), &tetherv1.GetSessionRequest{SessionId: w.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	var sawTimeout bool
	for _, e := range r.GetEvents() {
		if e.GetKind() == tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED && e.GetDetail() == "heartbeat timeout" {
			sawTimeout = true
		}
	}
	if !sawTimeout {
		t.Fatalf("the session was detached, but not by the heartbeat: %v", r.GetEvents())
	}
	// Messages published meanwhile wait; the client comes back directly.
	n.publishTo(t, "bh", "while away")
	c2 := n.dial(t, "")
	w2 := c2.open(resumeHello(w, 0))
	if !w2.GetResumed() {
		t.Fatalf("resume after the blackhole = %v", w2)
	}
	if m := c2.message(); string(m.GetPayload()) != "while away" {
		t.Fatalf("got %v", m)
	}
	c.cancel()
}

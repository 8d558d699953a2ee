package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// fastBackoff keeps real-time reconnect tests short.
var fastBackoff = client.WithBackoff(backoff.Config{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond, Multiplier: 2, ResetAfter: time.Second})

func proxyTo(t *testing.T, addr string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// collect receives n messages from s, failing on a duplicate or a gap.
func collect(t *testing.T, ctx context.Context, s *client.Session, n int) []string {
	t.Helper()
	var got []string
	var last uint64
	for len(got) < n {
		m, err := s.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		if m.Seq != last+1 {
			t.Fatalf("seq %d after %d", m.Seq, last)
		}
		last = m.Seq
		got = append(got, string(m.Payload))
	}
	return got
}

func TestResetResumesWithNothingLost(t *testing.T) {
	t.Parallel()
	srv, addr := tethertest.Serve(t, server.WithProfile(profile.Datacenter()))
	p := proxyTo(t, addr)
	sink := newSession(t, client.WithAddrs(addr), client.WithClientID("sink"), client.WithTopics("up"))
	s := newSession(t, client.WithAddrs(p.Addr()), client.WithClientID("dev"), fastBackoff, client.WithProfile(profile.Datacenter()))
	ctx := ctxT(t)
	if err := sink.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the server pushes to the device while its link breaks
		defer wg.Done()
		for i := range n {
			if _, err := srv.Publish(ctx, broker.Client("dev"), fmt.Appendf(nil, "down%d", i), ""); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 25 {
				p.Reset()
			}
		}
	}()
	go func() { // and the device sends up meanwhile
		defer wg.Done()
		for i := range n {
			if err := s.Send(ctx, client.Message{Topic: "up", Payload: fmt.Appendf(nil, "up%d", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	down := collect(t, ctx, s, n)
	up := collect(t, ctx, sink, n)
	wg.Wait()
	for i := range n {
		if down[i] != fmt.Sprint("down", i) || up[i] != fmt.Sprint("up", i) {
			t.Fatalf("message %d: down %q up %q", i, down[i], up[i])
		}
	}
	st := s.Stats()
	if st.Reconnects == 0 || st.ResumeStatus.String() != "RESUME_STATUS_RESUMED" {
		t.Fatalf("stats after resets: %+v", st)
	}
}

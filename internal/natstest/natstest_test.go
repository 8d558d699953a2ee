package natstest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/tetherhq/tether/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLong bounds what must happen, generously for a busy machine and -race.
const waitLong = 20 * time.Second

func TestStart(t *testing.T) {
	s := natstest.Start(t)
	if !strings.HasPrefix(s.URL(), "nats://127.0.0.1:") {
		t.Errorf("URL() = %q; want nats://127.0.0.1:PORT", s.URL())
	}
	url := s.URL()
	nc := natstest.Connect(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js := jetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one.>"}})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "one.a", []byte("before")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	s.Shutdown()
	s.Shutdown() // idempotent
	if s.Server().Running() {
		t.Fatal("the server still runs after Shutdown")
	}
	s.Restart(t)
	if s.URL() != url {
		t.Errorf("URL after Restart = %q; want %q", s.URL(), url)
	}
	// The stream is on file: it survived, and the client reconnected.
	publishEventually(ctx, t, js, "one.b")
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream has %d messages after a restart; want 2", info.State.Msgs)
	}
}

func TestStartCluster(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	if len(servers) != 3 {
		t.Fatalf("StartCluster(t, 3) returned %d servers", len(servers))
	}
	for i, s := range servers {
		if want := "n" + string(rune('1'+i)); s.Name() != want || s.Server().Name() != want {
			t.Errorf("server %d is named %q (nats-server: %q); want %q", i, s.Name(), s.Server().Name(), want)
		}
		if got := s.Server().ClusterName(); got != natstest.ClusterName {
			t.Errorf("%s is in cluster %q; want %q", s.Name(), got, natstest.ClusterName)
		}
	}
	urls := natstest.ClusterURLs(servers)
	if n := len(strings.Split(urls, ",")); n != 3 {
		t.Errorf("ClusterURLs = %q; want 3 URLs", urls)
	}
	nc := natstest.Connect(t, urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js := jetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
	if err != nil {
		t.Fatalf("CreateStream R3: %v", err)
	}
	if _, err := js.Publish(ctx, "r3.a", []byte("1")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	// Take the server the client is on away; the stream keeps working on
	// the other two, and the restarted one catches up.
	var gone *natstest.Server
	for _, s := range servers {
		if s.URL() == nc.ConnectedUrl() {
			gone = s
		}
	}
	if gone == nil {
		t.Fatalf("connected to %s, none of %s", nc.ConnectedUrl(), urls)
	}
	gone.Shutdown()
	publishEventually(ctx, t, js, "r3.b")
	gone.Restart(t)
	publishEventually(ctx, t, js, "r3.c")

	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs != 3 || info.Config.Replicas != 3 {
		t.Errorf("stream has %d messages and %d replicas; want 3 and 3", info.State.Msgs, info.Config.Replicas)
	}
	// Read it back through the restarted server alone.
	nc2 := natstest.Connect(t, gone.URL())
	c, err := jetStream(t, nc2).OrderedConsumer(ctx, "R3", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("OrderedConsumer via %s: %v", gone.Name(), err)
	}
	batch, err := c.Fetch(3, jetstream.FetchMaxWait(waitLong))
	if err != nil {
		t.Fatalf("Fetch via %s: %v", gone.Name(), err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Subject())
	}
	if strings.Join(got, " ") != "r3.a r3.b r3.c" {
		t.Errorf("read %v via the restarted %s; want r3.a r3.b r3.c", got, gone.Name())
	}
}

// publishEventually publishes to subject, retrying while the cluster
// recovers (a stream leader election, the client reconnecting), until ctx
// ends.
func publishEventually(ctx context.Context, t *testing.T, js jetstream.JetStream, subject string) {
	t.Helper()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(pctx, subject, []byte(subject), jetstream.WithMsgID(subject))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("Publish %s: %v", subject, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

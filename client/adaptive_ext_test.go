package client_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// stepLog records the adaptive heartbeat's steps.
type stepLog struct {
	mu    sync.Mutex
	steps []client.HeartbeatStep
}

func (l *stepLog) add(s client.HeartbeatStep) {
	l.mu.Lock()
	l.steps = append(l.steps, s)
	l.mu.Unlock()
}

func (l *stepLog) list() []client.HeartbeatStep {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.HeartbeatStep(nil), l.steps...)
}

// hbLossLog counts the streams lost to a heartbeat timeout, on either side.
type hbLossLog struct {
	mu sync.Mutex
	n  int
}

func (l *hbLossLog) add(c client.StateChange) {
	if c.State == client.StateReconnecting && c.Err != nil && strings.Contains(c.Err.Error(), "heartbeat") {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
}

func (l *hbLossLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// natNetSession serves p in the bubble and connects a session with p
// through a faultproxy.Net whose NAT forgets after idle.
func natNetSession(t *testing.T, p profile.Profile, idle time.Duration, opts ...client.Option) (*client.Session, *faultproxy.Net) {
	t.Helper()
	_, lis := tethertest.ServeBufconn(t, server.WithProfile(p))
	n := faultproxy.NewNet(1)
	n.SetIdleTimeout(idle)
	s, err := client.New(append([]client.Option{client.WithAddrs("passthrough:///bufnet"),
		client.WithDialOptions(grpc.WithContextDialer(n.Dialer(tethertest.Dialer(lis)))), client.WithProfile(p)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		n.Close()
	})
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, n
}

// awaitConverged lets fake time pass until the adaptive heartbeat's search
// ended below limit, or fails after within.
func awaitConverged(t *testing.T, s *client.Session, limit, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		time.Sleep(time.Minute)
		st := s.Stats()
		if st.HeartbeatLearned.Converged() && st.HeartbeatLearned.Failed <= limit+limit/10 && st.State == client.StateConnected {
			return time.Since(start)
		}
	}
	t.Fatalf("no convergence below %v within %v: %+v", limit, within, s.Stats())
	return 0
}

// TestAdaptiveHeartbeatLearnsTheNAT puts the mobile profile's session
// behind a NAT that forgets idle mappings after 120s, in fake time. The
// adaptive heartbeat converges to an interval below 120s and within 1.2×
// of it (so at most 1.2× the fewest heartbeats per hour that keep the
// mapping), after which no mapping is lost for hours; when the NAT's timer
// shrinks to 60s, it learns again.
func TestAdaptiveHeartbeatLearnsTheNAT(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var steps stepLog
		losses := &hbLossLog{}
		s, n := natNetSession(t, profile.Mobile(), 120*time.Second, client.WithClientID("phone"), client.WithOnHeartbeat(steps.add), client.WithOnState(losses.add))
		took := awaitConverged(t, s, 120*time.Second, 3*time.Hour)
		st := s.Stats()
		if st.Heartbeat >= 120*time.Second || float64(120*time.Second)/float64(st.Heartbeat) > 1.2 {
			t.Fatalf("converged to %v behind a 120s NAT; want below it, within 1.2×: %+v", st.Heartbeat, steps.list())
		}
		t.Logf("converged to %v (good %v, failed %v) after %v, %d NAT drops, %d steps", st.Heartbeat, st.HeartbeatLearned.Interval, st.HeartbeatLearned.Failed, took, n.IdleDrops(), len(steps.list()))

		// The profile's MaxConnectionAge (2h) still moves the session to a
		// new connection now and then: a GoAway, not a loss.
		drops, lost := n.IdleDrops(), losses.count()
		time.Sleep(4 * time.Hour)
		if st := s.Stats(); n.IdleDrops() != drops || losses.count() != lost || st.State != client.StateConnected {
			t.Fatalf("after learning: %d NAT drops and %d heartbeat losses in 4h; want none: %+v", n.IdleDrops()-drops, losses.count()-lost, st)
		}

		n.SetIdleTimeout(60 * time.Second)
		awaitConverged(t, s, 60*time.Second, 4*time.Hour)
		st = s.Stats()
		if st.Heartbeat >= 60*time.Second || float64(60*time.Second)/float64(st.Heartbeat) > 1.2 {
			t.Fatalf("after the NAT's timer shrank to 60s: interval %v; want below it, within 1.2×", st.Heartbeat)
		}
		drops = n.IdleDrops()
		time.Sleep(2 * time.Hour)
		if n.IdleDrops() != drops {
			t.Fatalf("%d NAT drops after learning the 60s timer", n.IdleDrops()-drops)
		}
		var revoked bool
		for _, step := range steps.list() {
			revoked = revoked || step.Reason == "revoked"
		}
		if !revoked {
			t.Fatalf("the shrunk timer was learned without revoking the old interval: %+v", steps.list())
		}
	})
}

// TestAdaptiveHeartbeatRemembersPerNetwork keeps what was learned in a
// file, per network: a new session on the same network starts at the
// learned interval; SetNetwork to another starts that one's search from
// the profile's interval.
func TestAdaptiveHeartbeatRemembersPerNetwork(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "heartbeat.json")
	store := client.NewFileIntervalStore(path)
	if err := store.Save("wifi-home", client.LearnedInterval{Interval: 100 * time.Second, Failed: 104 * time.Second, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		s, _ := natNetSession(t, profile.Mobile(), 0, client.WithClientID("phone"),
			client.WithIntervalStore(client.NewFileIntervalStore(path)), client.WithNetwork("wifi-home"))
		// A converged search settles 5 % below the good interval.
		if got := s.Stats().Heartbeat; got != 95*time.Second {
			t.Fatalf("granted %v on the known network; want the learned 100s less 5%%, 95s", got)
		}
		s.SetNetwork("lte")
		time.Sleep(time.Second)
		if st := s.Stats(); st.Heartbeat != 25*time.Second || st.State != client.StateConnected {
			t.Fatalf("on a new network: %+v; want the profile's 25s", st)
		}
	})
	got, err := client.NewFileIntervalStore(path).Load("wifi-home")
	if err != nil || got.Interval != 100*time.Second {
		t.Fatalf("stored: %+v, %v", got, err)
	}
	if none, err := client.NewFileIntervalStore(path).Load("elsewhere"); err != nil || none != (client.LearnedInterval{}) {
		t.Fatalf("an unknown network: %+v, %v; want the zero value", none, err)
	}
}

// A corrupt interval file is reported (naming the cure) and replaced by
// the next Save.
func TestFileIntervalStoreCorrupt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "heartbeat.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := client.NewFileIntervalStore(path)
	if _, err := store.Load("wifi"); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Fatalf("Load of a corrupt file: %v; want an error that says what to do", err)
	}
	want := client.LearnedInterval{Interval: time.Minute, Failed: 70 * time.Second, At: time.Unix(1e9, 0).UTC()}
	if err := store.Save("wifi", want); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Load("wifi"); err != nil || got != want {
		t.Fatalf("after Save: %+v, %v; want %+v", got, err, want)
	}
}

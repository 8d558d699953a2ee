package client_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// slowHealth delays the first answer of every grpc.health.v1 Watch by d, as
// a backend further away would.
func slowHealth(d time.Duration) grpc.ServerOption {
	return grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if strings.HasPrefix(info.FullMethod, "/grpc.health.v1.Health/") {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ss.Context().Done():
				return ss.Context().Err()
			}
		}
		return h(srv, ss)
	})
}

// TestFirstPickSpreadsSessions opens 60 sessions over three real servers,
// two of which answer health checks 100ms later than the first. A first
// pick that took the first backend to answer would put all 60 on the fast
// one; waiting for every backend's health spreads them at random.
//
// Each backend's count is Binomial(60, 1/3) once every backend's health
// is known. The test fails only if some
// backend gets none (3 × (2/3)^60 ≈ 8.2e-11) or more than 43 (3 × P(X ≥ 44)
// ≈ 8.4e-10): a false failure has a chance below 1e-9.
func TestFirstPickSpreadsSessions(t *testing.T) {
	t.Parallel()
	addrs := []string{
		tethertest.StartNode(t, nil).Addr,
		tethertest.StartNode(t, []grpc.ServerOption{slowHealth(100 * time.Millisecond)}).Addr,
		tethertest.StartNode(t, []grpc.ServerOption{slowHealth(100 * time.Millisecond)}).Addr,
	}
	const sessions = 60
	ctx := ctxT(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	for range sessions {
		// A generous bound: the wait ends when every backend answered, so
		// it costs nothing, and a loaded machine (60 sessions set up at
		// once, under -race) cannot make a pick give up on the slow ones.
		s := newSession(t, client.WithAddrs(addrs...), client.WithHealthWait(waitLong))
		wg.Go(func() {
			if err := s.Connect(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[s.Stats().Backend]++
			mu.Unlock()
		})
	}
	wg.Wait()
	got := make([]int, len(addrs))
	for i, a := range addrs {
		got[i] = counts[a]
	}
	t.Logf("%d sessions per backend (fast, slow, slow): %v", sessions, got)
	for i, n := range got {
		if n < 1 || n > 43 {
			t.Fatalf("backend %d got %d of %d sessions: %v; want every backend to get some", i, n, sessions, got)
		}
	}
}

// With WithHealthWait(0) the first pick does not wait: it takes whatever
// is known then, and still connects.
func TestHealthWaitZeroConnects(t *testing.T) {
	t.Parallel()
	a := tethertest.StartNode(t, nil).Addr
	b := tethertest.StartNode(t, nil).Addr
	s := newSession(t, client.WithAddrs(a, b), client.WithHealthWait(0))
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(client.WithAddrs(a), client.WithHealthWait(-time.Second)); err == nil || !strings.Contains(err.Error(), "WithHealthWait") {
		t.Fatalf("a negative health wait: New = %v; want an error naming WithHealthWait", err)
	}
}

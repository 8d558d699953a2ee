package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/auth"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// callMany makes n calls of f, concurrency at a time, and counts them by
// status code.
func callMany(n, concurrency int, f func() error) map[codes.Code]int {
	var (
		mu    sync.Mutex
		count = map[codes.Code]int{}
		left  atomic.Int64
		wg    sync.WaitGroup
	)
	left.Store(int64(n))
	for range concurrency {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				c := status.Code(f())
				mu.Lock()
				count[c]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return count
}

// On tetherd's defaults a backend publishes thousands of messages per
// second through Publish (the ghz run, 2,000 calls at concurrency
// 50, got 1,880 RESOURCE_EXHAUSTED before Publish had a bucket of its
// own), while other calls keep the low limit that throttles a loop, and a
// rate_exempt principal is never limited.
func TestDefaultRatesLetABackendPublish(t *testing.T) {
	t.Parallel()
	const backendToken, opsToken = "backend-token-0123456789abcdef01", "ops-token-0123456789abcdef012345"
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	writeFile(t, tokens, fmt.Sprintf(`{"principals":[
  {"name":"backend","token_sha256":%q,"publish":["*"]},
  {"name":"ops","token_sha256":%q,"admin":true,"rate_exempt":true}
]}`, auth.HashToken(backendToken), auth.HashToken(opsToken)))
	td := startTetherd(t, nil, "--tokens-file", tokens)
	cc := dial(t, td.grpcAddr)
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
	pub := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "news"}, Payload: []byte("x")}
	got := callMany(2000, 50, func() error {
		_, err := tetherv1.NewTetherServiceClient(cc).Publish(as(backendToken), pub)
		return err
	})
	if got[codes.OK] != 2000 {
		t.Errorf("2,000 Publish calls at concurrency 50: %v; want all OK", got)
	}
	// The shared bucket (--rate 50, --burst 100) still holds for other
	// calls, and is apart from Publish: the backend's burst is intact.
	got = callMany(150, 1, func() error {
		_, err := tetherv1.NewAdminServiceClient(cc).ListSessions(as(backendToken), &tetherv1.ListSessionsRequest{})
		return err
	})
	if got[codes.ResourceExhausted] == 0 {
		t.Errorf("150 quick AdminService calls: %v; want some RESOURCE_EXHAUSTED beyond the burst of 100", got)
	}
	got = callMany(150, 1, func() error {
		_, err := tetherv1.NewAdminServiceClient(cc).ListSessions(as(opsToken), &tetherv1.ListSessionsRequest{})
		return err
	})
	if got[codes.OK] != 150 {
		t.Errorf("150 quick AdminService calls by a rate_exempt principal: %v; want all OK", got)
	}
	td.stop()
}

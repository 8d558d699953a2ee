package chaos_test

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tetherhq/tether/internal/chaos"
)

// TestChaos runs every fault of the chaos suite at its small size, each a
// case of its own and all in parallel (they mostly wait), and checks its
// broker's promise: on NATS, every message of both directions arrives
// once and in order; on the memory broker, every loss is reported to its
// sender or its receiver. The table of all cases is logged at the end
// (go test -v).
func TestChaos(t *testing.T) {
	var mu sync.Mutex
	var results []chaos.Result
	t.Cleanup(func() { // after the parallel subtests
		var b strings.Builder
		chaos.Markdown(&b, results)
		t.Logf("chaos table:\n%s", b.String())
	})
	for _, c := range chaos.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			r := chaos.Run(t, c, chaos.Small(), logger())
			t.Log(r)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			for _, v := range r.Violations() {
				t.Errorf("%s (%s): %s", c.Fault, c.Promise(), v)
			}
		})
	}
}

// logger returns the nodes' and sessions' logger: stderr at debug level
// when TETHER_TEST_LOG is set, else nothing.
func logger() *slog.Logger {
	if os.Getenv("TETHER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

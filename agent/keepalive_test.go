package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherhq/tether/client"
)

// syncWriter is a ResponseWriter whose body can be read while the handler
// writes.
type syncWriter struct {
	mu   sync.Mutex
	h    http.Header
	body bytes.Buffer
}

func (w *syncWriter) Header() http.Header { return w.h }
func (w *syncWriter) WriteHeader(int)     {}
func (w *syncWriter) Flush()              {}
func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body.String()
}

// An idle event stream gets a keepalive comment every interval, and
// nothing before it; new events go out at once.
func TestEventStreamKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, err := New([]client.Option{client.WithAddrs("127.0.0.1:1")}, WithKeepalive(15*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &syncWriter{h: http.Header{}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.handleEvents(w, httptest.NewRequest(http.MethodGet, "/v1/events", nil).WithContext(ctx))
		}()
		synctest.Wait()
		time.Sleep(15*time.Second - time.Nanosecond)
		synctest.Wait()
		if strings.Contains(w.String(), "keepalive") {
			t.Fatalf("a keepalive before the interval:\n%s", w)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := strings.Count(w.String(), ": keepalive\n\n"); n != 1 {
			t.Fatalf("%d keepalives after 15s:\n%s", n, w)
		}
		a.events.add("message", map[string]string{"payload": "x"})
		synctest.Wait()
		if !strings.Contains(w.String(), fmt.Sprintf("id: %d\nevent: message\ndata: {\"payload\":\"x\"}\n\n", a.events.base)) {
			t.Fatalf("the event did not go out at once:\n%s", w)
		}
		cancel()
		<-done
		if err := a.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

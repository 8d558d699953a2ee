package agent

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/agenttest"
	"github.com/tetherhq/tether/internal/tethertest"
)

// TestFailoverFailsLostCallsRetryable kills the node the agent uses while
// a request it delivered waits for its reply. With in-memory brokers the
// other node opens a fresh session, to which that reply can never come:
// the call fails at once, retryable, and later calls work on the new node.
func TestFailoverFailsLostCallsRetryable(t *testing.T) {
	nodes := map[string]*tethertest.Node{}
	received := make(chan string, 16) // node addr of each held request
	for _, id := range []string{"A", "B"} {
		n := startNode(t, id)
		nodes[n.Addr] = n
		svc := newSession(t, client.WithAddrs(n.Addr), client.WithClientID("svc-"+id), client.WithTopics("svc.upper"))
		if err := svc.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		respond(t, svc, func(m *client.Message) *client.Message {
			if string(m.Payload) == "hold" {
				received <- n.Addr
				return nil
			}
			return upper(m)
		})
	}
	var addrs []string
	for a := range nodes {
		addrs = append(addrs, a)
	}
	r := startAgent(t, []client.Option{client.WithAddrs(addrs...), client.WithClientID("agent-1"), fastBackoff})
	ctx := ctxT(t)
	if code, out := r.call(t, ctx, "POST", "/v1/request", `{"topic":"svc.upper","payload":"before"}`); code != 200 || out["payload"] != "BEFORE" {
		t.Fatalf("before the failover: %d %v", code, out)
	}
	x := r.Status().Backend

	type result struct {
		code int
		out  map[string]any
		err  error
	}
	held := make(chan result, 1)
	go func() {
		code, out, err := agenttest.Call(ctx, r.hc, "POST", "/v1/request", `{"topic":"svc.upper","payload":"hold","timeout":"1m"}`)
		held <- result{code, out, err}
	}()
	if got := <-received; got != x {
		t.Fatalf("the request reached %s; the agent is on %s", got, x)
	}
	eventually(t, "the request acked", func() bool {
		r.calls.mu.Lock()
		defer r.calls.mu.Unlock()
		for _, c := range r.calls.pending {
			return c.acked
		}
		return false
	})
	nodes[x].Kill()

	res := <-held
	msg, _ := res.out["error"].(string)
	if res.err != nil || res.code != http.StatusServiceUnavailable || res.out["retryable"] != true || !strings.Contains(msg, "moved to a fresh one") {
		t.Fatalf("the call in flight: %d %v %v; want 503 retryable: the session moved", res.code, res.out, res.err)
	}
	if code, out := r.call(t, ctx, "POST", "/v1/request", `{"topic":"svc.upper","payload":"after"}`); code != 200 || out["payload"] != "AFTER" {
		t.Fatalf("after the failover: %d %v", code, out)
	}
	st := r.Status()
	if st.Backend == x || st.FreshSessions != 2 || st.Resumed || st.Reconnects < 1 {
		t.Errorf("status %+v; want a second fresh session on the other node", st)
	}
}

package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/agenttest"
)

// benchCallers is how many short-lived callers run at once.
const benchCallers = 8

// BenchmarkShortLivedCallers compares, in one run, b.N request/reply calls
// by short-lived callers through the agent (a new Unix-socket connection
// and one POST /v1/request each) with b.N calls that each dial tetherd
// with a fresh gRPC connection and a raw Connect stream (hello, welcome,
// the request, the reply, close), as a process without an agent must.
// Both reach the same echo responder on the same in-process node, with
// benchCallers callers at once. It reports calls/s and p99 of each, and
// their ratios (agent over direct); and, for reference, the same calls
// made with a fresh SDK session each (client.New, Request, Close).
//
//	go test -run '^$' -bench ShortLivedCallers -benchtime 2000x ./agent/
func BenchmarkShortLivedCallers(b *testing.B) {
	n := startNode(b, "A")
	svc := newSession(b, client.WithAddrs(n.Addr), client.WithClientID("svc"), client.WithTopics("svc.echo"))
	if err := svc.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	respond(b, svc, func(m *client.Message) *client.Message { return &client.Message{Payload: m.Payload} })
	r := startAgent(b, []client.Option{client.WithAddrs(n.Addr), client.WithClientID("agent-bench")})
	ctx := context.Background()
	viaAgent := func() error {
		hc := agenttest.UnixClient(r.sock)
		defer hc.CloseIdleConnections()
		code, out, err := agenttest.Call(ctx, hc, http.MethodPost, "/v1/request", `{"topic":"svc.echo","payload":"ping","timeout":"10s"}`)
		if err == nil && (code != http.StatusOK || out["payload"] != "ping") {
			err = fmt.Errorf("%d %v", code, out)
		}
		return err
	}
	direct := func() error { return directCall(ctx, n.Addr) }
	sdk := func() error { // a fresh SDK session per call: what a script using the SDK pays
		s, err := client.New(client.WithAddrs(n.Addr))
		if err != nil {
			return err
		}
		defer s.Close(ctx)
		_, err = s.Request(ctx, client.Message{Topic: "svc.echo", Payload: []byte("ping")})
		return err
	}
	// Warm both paths up.
	for range 20 {
		if err := viaAgent(); err != nil {
			b.Fatal(err)
		}
		if err := direct(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	agentRate, agentP99 := measure(b, b.N, viaAgent)
	directRate, directP99 := measure(b, b.N, direct)
	sdkRate, sdkP99 := measure(b, b.N, sdk)
	b.StopTimer()
	b.ReportMetric(sdkRate, "sdk-calls/s")
	b.ReportMetric(float64(sdkP99.Microseconds())/1000, "sdk-p99-ms")
	b.ReportMetric(agentRate, "agent-calls/s")
	b.ReportMetric(directRate, "direct-calls/s")
	b.ReportMetric(float64(agentP99.Microseconds())/1000, "agent-p99-ms")
	b.ReportMetric(float64(directP99.Microseconds())/1000, "direct-p99-ms")
	b.ReportMetric(agentRate/directRate, "rate-ratio")
	b.ReportMetric(float64(agentP99)/float64(directP99), "p99-ratio")
}

// measure runs n calls of f, benchCallers at a time, and returns the calls
// per second and the 99th-percentile latency.
func measure(b *testing.B, n int, f func() error) (float64, time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchCallers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := f(); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return float64(n) / elapsed.Seconds(), lat[min(n-1, n*99/100)]
}

// directCall is one request/reply by a process without an agent: a fresh
// gRPC connection and a raw Connect stream.
func directCall(ctx context.Context, addr string) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		return err
	}
	send := func(f *tetherv1.ConnectRequest) error { return st.Send(f) }
	if err := send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{}}}); err != nil {
		return err
	}
	if f, err := st.Recv(); err != nil || f.GetWelcome() == nil {
		return fmt.Errorf("no welcome: %v %v", f, err)
	}
	corr := newID()
	if err := send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Message{Message: &tetherv1.ClientMessage{
		Seq: 1, Target: &tetherv1.ClientMessage_Topic{Topic: "svc.echo"}, Payload: []byte("ping"), CorrelationId: corr}}}); err != nil {
		return err
	}
	for {
		f, err := st.Recv()
		if err != nil {
			return err
		}
		if m := f.GetMessage(); m != nil && m.GetCorrelationId() == corr {
			break
		}
	}
	if err := send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Close{Close: &tetherv1.Close{Reason: "done"}}}); err != nil {
		return err
	}
	_ = st.CloseSend()
	for { // until the server ends the stream
		if _, err := st.Recv(); err != nil {
			return nil
		}
	}
}

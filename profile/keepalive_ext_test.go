package profile_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// pingFrameSize is the size of an HTTP/2 PING frame or PING ack: a 9-byte
// frame header and 8 bytes of opaque data.
const pingFrameSize = 17

// TestClientNeverTripsTooManyPings runs each profile's client against its
// own server for an hour of fake time over one idle stream, the case where
// transport pings are not suppressed by data, and checks that the stream
// survives while the client keeps pinging.
func TestClientNeverTripsTooManyPings(t *testing.T) {
	t.Parallel()
	for _, p := range builtins() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			// Max-age ends every stream on purpose (GOAWAY, then a hard
			// close after the grace); this test isolates ping policing.
			p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0
			synctest.Test(t, func(t *testing.T) {
				w := startIdleWatch(t, p.ServerOptions(), p.DialOptions())
				time.Sleep(time.Hour)
				synctest.Wait()
				if err := w.ended(); err != nil {
					t.Fatalf("idle stream ended within an hour: %v", err)
				}
				// In every Client.Time the client either pings or acks a
				// server ping; allow a Timeout of slack per round.
				want := int64(time.Hour / (p.Client.Time + p.Client.Timeout))
				if got := w.written.Load() / pingFrameSize; got < want {
					t.Fatalf("client wrote %d ping-sized frames in an hour, want at least %d: keepalive was not exercised", got, want)
				}
			})
		})
	}
}

// TestTooManyPingsControl proves the test above can fail: a client pinging
// every 10s against a server with grpc-go's default enforcement (MinTime
// 5m) loses its stream to too_many_pings.
func TestTooManyPingsControl(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		kp := keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}
		w := startIdleWatch(t, nil, []grpc.DialOption{grpc.WithKeepaliveParams(kp)})
		time.Sleep(time.Minute)
		synctest.Wait()
		err := w.ended()
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "too_many_pings") {
			t.Fatalf("stream error after a minute = %v, want Unavailable with too_many_pings", err)
		}
	})
}

// idleWatch is a grpc server and client over bufconn with one open, idle
// Health/Watch stream between them.
type idleWatch struct {
	streamErr chan error   // receives the stream's error when it ends
	written   atomic.Int64 // bytes the client wrote since the stream opened
}

// ended returns the error that ended the stream, or nil while it is open.
func (w *idleWatch) ended() error {
	select {
	case err := <-w.streamErr:
		return err
	default:
		return nil
	}
}

// startIdleWatch starts the server and client inside the caller's synctest
// bubble, opens the stream and reads its first response. t.Cleanup stops
// everything it started.
func startIdleWatch(t *testing.T, serverOpts []grpc.ServerOption, dialOpts []grpc.DialOption) *idleWatch {
	t.Helper()
	w := &idleWatch{streamErr: make(chan error, 1)}
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer(serverOpts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns once srv.Stop closes the listener
	}()
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := lis.DialContext(ctx)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, written: &w.written}, nil
	}
	cc, err := grpc.NewClient("passthrough:///bufnet", append(dialOpts,
		grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	received := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-received
		_ = cc.Close()
		srv.Stop()
		<-served
	})

	stream, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		close(received)
		t.Fatalf("Health/Watch: %v", err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		close(received)
		t.Fatalf("first Health/Watch response = %v, %v; want SERVING", resp, err)
	}
	synctest.Wait()
	w.written.Store(0)
	go func() {
		defer close(received)
		for {
			if _, err := stream.Recv(); err != nil {
				w.streamErr <- err
				return
			}
		}
	}()
	return w
}

// countingConn counts the bytes written through it.
type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

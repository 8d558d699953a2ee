package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// BenchmarkRelay measures the SDK's send and receive path end to end:
// one session sends b.N messages of 64 bytes with Send to another's
// client id, which takes them with Receive, through a real server on
// loopback, on the server's and the SDK's defaults: the receive window,
// the acks and the SDK's pacing to the server's frame rate all take part.
func BenchmarkRelay(b *testing.B) {
	_, addr := tethertest.Serve(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recv := newBenchSession(b, client.WithAddrs(addr), client.WithClientID("b"))
	send := newBenchSession(b, client.WithAddrs(addr), client.WithClientID("a"))
	if err := recv.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	if err := send.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := recv.Receive(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := send.Send(ctx, client.Message{ClientID: "b", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func newBenchSession(b *testing.B, opts ...client.Option) *client.Session {
	b.Helper()
	s, err := client.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

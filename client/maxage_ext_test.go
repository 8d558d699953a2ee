package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// A session sent away with go_away MAX_AGE reconnects on a new connection:
// on the old one (which grpc-go keeps open until its own GOAWAY and grace)
// the server could give the next stream only a short life and send it away
// again, a radio wake-up each time on a phone. So every stream lives at
// least the 70% of MaxConnectionAge the server's spread starts at, each on
// a connection of its own.
func TestMaxAgeReconnectsOnANewConnection(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const age = 20 * time.Second
		dc := profile.Datacenter()
		dc.Server.MaxConnectionAge, dc.Server.MaxConnectionAgeGrace = age, 10*time.Second
		_, lis := tethertest.ServeBufconn(t, server.WithProfile(dc))
		var dials atomic.Int64
		dial := tethertest.Dialer(lis)
		rec := &bbStates{}
		s, err := client.New(client.WithAddrs("passthrough:///bufnet"),
			client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				dials.Add(1)
				return dial(ctx, addr)
			})),
			client.WithProfile(dc), client.WithClientID("aged"), client.WithOnState(rec.add))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		var since time.Time
		aways, connects := 0, 0
		for _, c := range rec.list() {
			switch c.State {
			case client.StateConnected:
				since = c.Time
				connects++
			case client.StateReconnecting:
				var ga *client.GoAwayError
				if !errors.As(c.Err, &ga) || ga.Reason != client.GoAwayMaxAge {
					t.Fatalf("reconnect for %v; want only go_away MAX_AGE: %s", c.Err, rec)
				}
				aways++
				if lived := c.Time.Sub(since); lived < age*7/10 {
					t.Fatalf("a stream lived %v; want at least %v: %s", lived, age*7/10, rec)
				}
			}
		}
		if aways < 5 {
			t.Fatalf("%d go_aways in 5 minutes with a %v MaxConnectionAge: %s", aways, age, rec)
		}
		if n := dials.Load(); n != int64(connects) {
			t.Fatalf("%d dials for %d streams; want a connection each", n, connects)
		}
	})
}

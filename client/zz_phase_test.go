package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tetherhq/tether/backoff"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/faultproxy"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/server"
)

type echoH struct{}

func (echoH) OnConnect(context.Context, *server.Session) error { return nil }
func (echoH) OnMessage(ctx context.Context, s *server.Session, m *server.Message) error {
	_, err := s.Send(ctx, m.Payload)
	return err
}
func (echoH) OnClose(*server.Session, string) {}

func TestZZPhases(t *testing.T) {
	_, addr := tethertest.Serve(t, server.WithHandler(echoH{}))
	px, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	var rec, con, echo []float64
	for i := range 30 {
		states := make(chan client.StateChange, 16)
		bo := backoff.DefaultConfig()
		bo.Base = time.Millisecond
		s, _ := client.New(client.WithAddrs(px.Addr()), client.WithBackoff(bo), client.WithClientID(fmt.Sprint("c", i)), client.WithOnState(func(c client.StateChange) { states <- c }))
		if err := s.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		for len(states) > 0 {
			<-states
		}
		t0 := time.Now()
		px.Reset()
		s.Send(context.Background(), client.Message{Topic: "x", Payload: []byte("E")})
		var tr, tc time.Duration
		for tc == 0 {
			c := <-states
			switch c.State {
			case client.StateReconnecting:
				tr = c.Time.Sub(t0)
			case client.StateConnected:
				tc = c.Time.Sub(t0)
			}
		}
		m, err := s.Receive(context.Background())
		if err != nil || string(m.Payload) != "E" {
			t.Fatal(err, m)
		}
		te := time.Since(t0)
		rec, con, echo = append(rec, float64(tr.Microseconds())), append(con, float64(tc.Microseconds())), append(echo, float64(te.Microseconds()))
		s.Close(context.Background())
	}
	slices.Sort(rec)
	slices.Sort(con)
	slices.Sort(echo)
	t.Logf("p50 µs: reconnecting %v connected %v echo %v", rec[15], con[15], echo[15])
}

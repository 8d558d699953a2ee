package centrifugesys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	centrifugego "github.com/centrifugal/centrifuge-go"

	"github.com/tetherhq/tether/bench/internal/system"
)

// Centrifuge's liveness defaults (centrifuge v0.40 config.go): the server
// pings every pingInterval and disconnects a client whose pong is
// pongTimeout late. (centrifuge-go, for its part, reconnects when a ping
// is 10 s late: its MaxServerPingDelay.)
const (
	pingInterval = 25 * time.Second
	pongTimeout  = 10 * time.Second
)

// Ext returns Centrifuge's capabilities for the idle, resume and detection
// scenarios. It has no DialMux: a Centrifuge connection carries one
// client. Its client reconnects by itself, and with the default channel
// (no history) what was published into a broken connection is lost.
func Ext() system.Ext {
	return system.Ext{
		NewServer:    NewServerWithHooks,
		DialObserved: DialObserved,
		Resumes:      true,
		Replays:      false,
		Bound: func(system.ServerOptions) (time.Duration, time.Duration) {
			// The scenarios' clients ask for no interval: Centrifuge's
			// defaults apply whatever tether profile is named. The server
			// pings a connection first at a random time in [pingInterval/2,
			// pingInterval) and every pingInterval after, and cuts it when
			// nothing came in the pongTimeout after a ping.
			return pingInterval + pongTimeout, pingInterval/2 + pongTimeout
		},
	}
}

// DialObserved is Dial whose client reports each break to onDown (when
// centrifuge-go leaves connected for connecting) and, with backoffBase >
// 0, reconnects with it as its minimum delay (jittered, doubling up to
// the default 20 s). Its round-trip requests outlive a break: an RPC that
// fails because the connection went is sent again once the client is
// connected, as an application on centrifuge-go has to do itself.
func DialObserved(ctx context.Context, addr string, opts system.ClientOptions, backoffBase time.Duration, onDown func(why string)) (system.Client, error) {
	tune := func(cfg *centrifugego.Config) {
		if backoffBase > 0 {
			cfg.MinReconnectDelay = backoffBase
		}
	}
	r := &retrying{next: make(chan struct{})}
	var up bool
	observe := func(cc *centrifugego.Client) {
		cc.OnConnected(func(centrifugego.ConnectedEvent) {
			r.mu.Lock()
			up = true
			r.gen++
			close(r.next)
			r.next = make(chan struct{})
			r.mu.Unlock()
		})
		cc.OnConnecting(func(e centrifugego.ConnectingEvent) {
			r.mu.Lock()
			was := up
			up = false
			r.mu.Unlock()
			if was && onDown != nil {
				onDown(e.Reason)
			}
		})
	}
	c, err := dial(ctx, addr, opts, tune, observe)
	if err != nil {
		return nil, err
	}
	r.client = c
	return r, nil
}

// retrying is a client whose round-trip requests are re-sent after a
// break.
type retrying struct {
	*client

	mu   sync.Mutex
	gen  uint64        // connections established so far
	next chan struct{} // closed at the next one
}

// Send sends payload; a round-trip request that fails is sent again on
// the next connection (centrifuge-go fails a request written into a
// connection that broke, and only then reconnects).
func (r *retrying) Send(ctx context.Context, payload []byte) error {
	for {
		r.mu.Lock()
		gen, next := r.gen, r.next
		r.mu.Unlock()
		err := r.client.Send(ctx, payload)
		if err == nil || len(payload) == 0 || payload[0] != system.KindEcho || errors.Is(err, centrifugego.ErrClientClosed) {
			return err
		}
		r.mu.Lock()
		again := r.gen != gen // reconnected already: send at once
		r.mu.Unlock()
		if !again {
			select {
			case <-next:
			case <-ctx.Done():
				return fmt.Errorf("%w (after %v)", ctx.Err(), err)
			}
		}
	}
}

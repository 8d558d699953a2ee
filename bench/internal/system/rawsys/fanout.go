package rawsys

import (
	"context"

	"github.com/tetherhq/tether/bench/internal/system"
)

// Subscribe puts the stream in the App's own topic table (KindSubscribe):
// the raw server fans a topic's messages out to its streams itself, one
// SendMsg per stream. A round trip after it makes sure the server has
// handled it (one stream, frames in order).
func (c *client) Subscribe(ctx context.Context, topic string) error {
	if err := c.Send(ctx, append([]byte{system.KindSubscribe}, topic...)); err != nil {
		return err
	}
	if err := c.Send(ctx, system.Payload(system.KindEcho, 1)); err != nil {
		return err
	}
	_, err := c.Recv(ctx)
	return err
}

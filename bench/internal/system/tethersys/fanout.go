package tethersys

import (
	"context"

	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/broker"
)

// PublishTopic publishes payload to topic's subscribers with
// Server.Publish (the memory broker's topic routing).
func (s *tetherServer) PublishTopic(topic string, payload []byte) error {
	_, err := s.srv.Publish(context.Background(), broker.Topic(topic), payload, "")
	return err
}

// Subscribe subscribes the session to topic with the SDK, then makes a
// round trip on the same stream: the server handles a stream's frames in
// order, so once the echo is back the subscription is in place.
func (c *tclient) Subscribe(ctx context.Context, topic string) error {
	if err := c.s.Subscribe(ctx, topic); err != nil {
		return err
	}
	if err := c.Send(ctx, system.Payload(system.KindEcho, 1)); err != nil {
		return err
	}
	_, err := c.Recv(ctx)
	return err
}

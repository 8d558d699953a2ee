package system

import "context"

// Capabilities of the flow-control scenarios (relay, flow, sendwait) beyond
// [Client]: addressing another session by its client id, and one
// acknowledged send. The scenarios assert these with a type assertion and
// refuse a system that lacks them, saying so.

// Relayer is a Client that can send a payload to another session, named by
// its client id (ClientOptions.ID), through the server: tether routes it
// with server.Router (tetherd's default handler), raw looks the target's
// stream up and writes to it.
type Relayer interface {
	SendTo(ctx context.Context, clientID string, payload []byte) error
}

// Waiter is a Client that can send one payload and wait until the server
// has handled it: tether's SendWait (the server's ack), raw's unary RPC
// round trip.
type Waiter interface {
	SendWait(ctx context.Context, payload []byte) error
}

// Observer receives what a client learns about its own session: the
// stream was cut and is being resumed (tether: the SDK left
// StateConnected), messages were reported lost (tether: the seq range of a
// resume with a gap), or a message the client accepted will never be
// handled (tether: WithOnSendError). A system without these events never
// calls them. The methods may be called from any goroutine.
type Observer interface {
	Cut(why string)
	Gap(lost uint64)
	SendFailed(why string)
}

// Package h2window sets the HTTP/2 flow-control windows of tether's server
// and SDK: fixed, and large enough that flow control never paces a
// session on a fast link, instead of grpc-go's default of 64 KiB grown by
// its bandwidth-delay-product (BDP) estimator.
//
// The estimator is built for bulk transfers. It samples by sending a PING
// with the first DATA frame it receives after its previous sample ended,
// with a connection WINDOW_UPDATE ahead of it. A session stream carries
// small messages a few milliseconds apart or more, so nearly every message
// starts a sample: the receiver writes a WINDOW_UPDATE and a PING, and the
// sender reads them and writes a PING ack, on top of the message itself.
// In a fan-out to 1,000 sessions that was two of every three system calls
// on the wire, about half the server's CPU per delivery (BENCHMARKS.md, "Fixed
// flow-control windows").
//
// The windows bound what a peer may send before the receiver reads, per
// stream and per connection; they allocate nothing. tether's own limits
// pace a session (Limits and the receive window of frames.proto); where a
// server reads a stream more slowly than its client sends (frame pacing),
// these windows are what holds the client back, at 1 MiB in flight. For
// throughput they only need to cover a link's bandwidth-delay product:
// 1 MiB is 10 MiB/s per stream at 100 ms round trip. grpc-go's estimator
// would grow them to at most 16 MiB. Window options given after these
// (grpc.NewServer's, or the SDK's WithDialOptions) replace the sizes; the
// estimator stays off either way.
package h2window

import "google.golang.org/grpc"

const (
	// Stream is each stream's receive window, in bytes.
	Stream = 1 << 20
	// Conn is each connection's receive window, in bytes. grpc-go
	// replenishes it as frames arrive, whatever the streams' readers do.
	Conn = 2 << 20
)

// ServerOptions returns the grpc.ServerOptions that set the server's fixed
// windows, which turns grpc-go's BDP estimator off.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StaticStreamWindowSize(Stream), grpc.StaticConnWindowSize(Conn)}
}

// DialOptions returns the grpc.DialOptions that set a client's fixed
// windows, which turns grpc-go's BDP estimator off.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithStaticStreamWindowSize(Stream), grpc.WithStaticConnWindowSize(Conn)}
}

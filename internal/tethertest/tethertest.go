// Package tethertest starts real tether servers on loopback for tests.
package tethertest

import (
	"testing"

	"github.com/tetherhq/tether/server"
)

// Serve starts a tether server with opts on a *grpc.Server that listens on
// 127.0.0.1 on an ephemeral port, and returns it with its address. The
// server is stopped and closed when the test ends.
func Serve(t testing.TB, opts ...server.Option) (*server.Server, string) {
	t.Helper()
	n := StartNode(t, nil, opts...)
	return n.Server, n.Addr
}

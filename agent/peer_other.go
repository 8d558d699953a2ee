//go:build !linux

package agent

import (
	"fmt"
	"net"
)

// peerOf names the other end of a connection: without peer credentials,
// each connection is a caller of its own. The socket's mode keeps other
// users out.
func peerOf(c net.Conn) (caller string, foreign bool) {
	if _, ok := c.(*net.UnixConn); ok {
		return fmt.Sprintf("conn %p", c), false
	}
	return "conn " + c.RemoteAddr().String(), false
}

//go:build linux

package agent

import (
	"fmt"
	"net"
	"syscall"
)

// peerOf names the process at the other end of a Unix connection, from
// its peer credentials, and reports whether it runs as another user or
// its credentials cannot be read (then the caller is refused).
func peerOf(c net.Conn) (caller string, foreign bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return "conn " + c.RemoteAddr().String(), false
	}
	// Without the credentials the caller is unknown: refused (fail closed).
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Sprintf("conn %p", c), true
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return fmt.Sprintf("conn %p", c), true
	}
	return fmt.Sprintf("pid %d", cred.Pid), int(cred.Uid) != syscall.Getuid()
}

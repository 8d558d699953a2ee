package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// ListenUnix listens on a Unix socket at path that only the owner of the
// process can connect to (mode 0600). The socket is bound in a fresh
// directory of mode 0700 beside path, given its mode there, and renamed
// into place, so no other user can connect to it at any moment, whatever
// the umask. A stale socket at path (connecting to it is refused: nobody
// listens) is replaced; a live one, one that fails to connect otherwise, or
// a file that is not a socket, is an error. Closing the listener
// removes the socket.
func ListenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("tether/agent: empty socket path")
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".tsa") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("tether/agent: socket %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxSocketPath || len(path) > maxSocketPath {
		return nil, fmt.Errorf("tether/agent: socket %s: the path is too long for a Unix socket (at most about %d bytes, with room for a temporary name beside it)", path, maxSocketPath-len(tmp)+len(path))
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("tether/agent: socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // the socket moves: unixListener removes it
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("tether/agent: socket %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("tether/agent: socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("tether/agent: socket %s: %w", path, err)
	}
	return &unixListener{UnixListener: l, path: path, fi: fi}, nil
}

// dialStale dials the socket at path to see whether anyone listens (a
// variable for tests).
var dialStale = func(path string) (net.Conn, error) { return net.DialTimeout("unix", path, time.Second) }

// clearStale removes a socket at path that nobody listens on: one that
// refuses a connection (ECONNREFUSED). Any other failure to connect leaves
// it and is an error.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("tether/agent: socket %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("tether/agent: socket %s: the path exists and is not a socket (%v); remove it or choose another path", path, fi.Mode().Type())
	}
	c, err := dialStale(path)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("tether/agent: socket %s: another process listens on it (another agent?)", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil // gone meanwhile
	case !errors.Is(err, syscall.ECONNREFUSED):
		// Not surely stale: a listener too busy to accept, or one we may
		// not reach. Removing it could cut a live agent off.
		return fmt.Errorf("tether/agent: socket %s: cannot tell whether another process listens on it (%v): stop that process, or remove the socket if it is stale", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tether/agent: removing the stale socket %s: %w", path, err)
	}
	return nil
}

// unixListener removes its socket on Close, if it is still the one it
// created.
type unixListener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
	once sync.Once
}

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, e := os.Lstat(l.path); e == nil && os.SameFile(fi, l.fi) {
			_ = os.Remove(l.path)
		}
	})
	return err
}

// ListenLoopback listens on a TCP address on the loopback interface
// ("127.0.0.1:8470", "[::1]:0", "localhost:8470"). Any other address is
// refused: the agent lends its session to whoever connects, and a TCP port
// has no owner check, so it must never be reachable from the network.
// Every local user can reach a loopback port; prefer the Unix socket on a
// shared machine.
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tether/agent: listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("tether/agent: listen %q: not a loopback address: the agent's HTTP port listens on 127.0.0.1, [::1] or localhost only", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tether/agent: %w", err)
	}
	if a, ok := l.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("tether/agent: listen %q: bound to %v, which is not loopback", addr, l.Addr())
	}
	return l, nil
}

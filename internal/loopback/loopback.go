// Package loopback tells whether a network address stays on this machine:
// tetherd refuses plaintext beyond loopback, and the tether CLI and SDK
// refuse to send a bearer token there in plaintext.
package loopback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// resolveTimeout bounds the look-up of an address's host name.
const resolveTimeout = 5 * time.Second

// Addr reports whether an address (host:port) stays on this machine: its
// host is "localhost", a loopback IP (127.0.0.0/8, ::1) or a name that
// resolves only to loopback IPs. An empty host, 0.0.0.0 and :: mean every
// interface, which is not loopback.
func Addr(ctx context.Context, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if ok, known := literal(host); known {
		return ok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return false, fmt.Errorf("resolving %q: %w", host, err)
	}
	if len(ips) == 0 {
		return false, errors.New("the host resolves to no address")
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return false, nil
		}
	}
	return true, nil
}

// Literal reports, without a look-up, whether an address (host:port) is
// "localhost" or a loopback IP. Anything else, a host name or a string that
// is not host:port (a gRPC target such as "dns:///name:7070"), is not.
func Literal(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ok, _ := literal(host)
	return ok
}

// literal decides host when no look-up is needed: known is false for a
// host name other than localhost.
func literal(host string) (ok, known bool) {
	if host == "" {
		return false, true
	}
	if strings.EqualFold(host, "localhost") {
		return true, true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback(), true
	}
	return false, false
}

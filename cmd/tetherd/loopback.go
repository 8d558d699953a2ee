package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// resolveTimeout bounds the look-up of a listen address's host name.
const resolveTimeout = 5 * time.Second

// isLoopback reports whether a listen address (host:port) stays on this
// machine: its host is "localhost", a loopback IP (127.0.0.0/8, ::1) or a
// name that resolves only to loopback IPs. An empty host, 0.0.0.0 and :: mean
// every interface, which is not loopback.
func isLoopback(ctx context.Context, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "" {
		return false, nil
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback(), nil
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

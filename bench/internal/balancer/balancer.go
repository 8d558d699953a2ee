// Package balancer is the multi-node scenarios' load balancer, inside the
// client process: a dialer that opens each new connection to the next of
// its backends, round-robin, and whose backends the orchestrator replaces
// (as a load balancer's health check drops a dead node). Sessions dial one
// virtual address through it, so they all land on the one node the
// balancer names until the orchestrator names others; no connection is
// proxied, so a client process holds one descriptor per connection.
package balancer

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrNoBackend is what Dial returns while the balancer has no backend.
var ErrNoBackend = errors.New("balancer: no backend to dial")

// Balancer hands out backends round-robin. Its methods are safe for
// concurrent use.
type Balancer struct {
	dialer net.Dialer

	mu       sync.Mutex
	backends []string
	next     int
}

// New returns a balancer over backends ("host:port") that dials with d
// (keep the profile's TCP keepalive settings in it).
func New(d net.Dialer, backends ...string) *Balancer {
	b := &Balancer{dialer: d}
	b.Set(backends...)
	return b
}

// Set replaces the backends; connections already open stay where they
// are.
func (b *Balancer) Set(backends ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append([]string(nil), backends...)
	b.next = 0
}

// pick returns the next backend.
func (b *Balancer) pick() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.backends) == 0 {
		return "", ErrNoBackend
	}
	addr := b.backends[b.next%len(b.backends)]
	b.next++
	return addr, nil
}

// Dial opens a TCP connection to the next backend, whatever the address
// asked for (the virtual one): the shape of grpc.WithContextDialer.
func (b *Balancer) Dial(ctx context.Context, _ string) (net.Conn, error) {
	addr, err := b.pick()
	if err != nil {
		return nil, err
	}
	return b.dialer.DialContext(ctx, "tcp", addr)
}

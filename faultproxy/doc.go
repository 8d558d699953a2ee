// Package faultproxy is a small in-process TCP proxy for tests that injects
// network faults between a client and a server on the loopback interface.
//
// A [Proxy] listens on 127.0.0.1 on an ephemeral port and forwards every
// accepted connection to one target address. While it runs, a test can
//
//   - blackhole the path ([Proxy.Blackhole]): bytes, FINs and resets in
//     both directions are silently discarded while both connections stay
//     open, like a half-open or NAT-dropped path;
//   - reset every current connection ([Proxy.Reset]): both sides see a TCP
//     RST;
//   - refuse new connections ([Proxy.Refuse]): they are accepted and reset
//     at once, like a backend that is down;
//   - add latency ([Proxy.SetDelay]): each forwarded chunk is held for a
//     fixed duration.
//
// [Proxy.Close] stops the listener, closes every connection and waits for
// every goroutine the proxy started, so tests that use go.uber.org/goleak
// stay clean.
//
// Blackholing drops bytes, not messages: a framed protocol (HTTP/2, gRPC)
// whose bytes were dropped mid-stream is usually corrupt once forwarding
// resumes, exactly as it would be after real packet loss that TCP cannot
// repair. Only new connections are affected by Refuse, and a blackholed
// proxy still completes the TCP handshake for new connections (the kernel
// does that before the proxy sees them); their bytes are dropped.
//
// # Why not toxiproxy
//
// github.com/Shopify/toxiproxy/v2 (v2.5.0, the latest version) can be used
// in-process, but it is not lean: its root package cannot create a proxy
// without an *ApiServer, so using it compiles in the HTTP API (gorilla/mux,
// promhttp) and adds seven modules to go.mod (toxiproxy, gorilla/mux,
// rs/zerolog, rs/xid, mattn/go-colorable, mattn/go-isatty, gopkg.in/tomb.v1).
// Toxics are configured through JSON, Stop waits only for the accept loop
// (each link's goroutines exit asynchronously), and there is no "accept and
// reset" mode for a refused backend. The few faults our tests need fit in
// about three hundred lines of standard library code.
package faultproxy

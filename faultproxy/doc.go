// Package faultproxy is a small in-process TCP proxy for tests that injects
// network faults between a client and a server on the loopback interface.
// Use it to check how code built on tether (or anything else that speaks
// TCP) behaves when the network misbehaves.
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
//     fixed duration, varied by [Proxy.SetJitter];
//   - cap bandwidth ([Proxy.SetBandwidth]): each direction of each
//     connection carries at most a given number of bytes per second;
//   - emulate a NAT or load-balancer idle timeout ([Proxy.SetIdleTimeout]):
//     a connection that carried no bytes for a while is blackholed on its
//     own, silently and for good; [Proxy.IdleDrops] counts such drops.
//
// [Net] applies the same faults (blackhole, latency with jitter, a NAT idle
// timeout) to in-process connections, such as a bufconn listener's: every
// wait is a timer or a channel, so a test can run it in a testing/synctest
// bubble, in fake time, where hours of heartbeats take milliseconds.
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
// # Using faultproxy in your tests
//
// Start the server under test as usual, put a proxy in front of it, and
// point the client at [Proxy.Addr] instead of the server's address. Close
// the proxy when the test ends. Faults can then be switched on and off at
// any point of the test:
//
//	func TestClientSurvivesReset(t *testing.T) {
//		srv := startServer(t) // your server, listening on srv.Addr()
//		p, err := faultproxy.Start(srv.Addr())
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { p.Close() })
//
//		client := dialClient(t, p.Addr()) // your client, via the proxy
//		// ... use client ...
//
//		p.Reset() // every proxied connection gets a TCP RST
//		// ... check that client reconnects and carries on ...
//
//		p.Blackhole(true) // the path goes silent; no error is reported
//		// ... check that client's keepalives or deadlines notice ...
//		p.Blackhole(false)
//	}
//
// Faults act on connections, not on requests: a client that pools or
// multiplexes connections (gRPC does) sees them on all the requests that
// share one. Each method documents which connections a fault applies to
// (current, new or both) and what switching it off restores. Tests that
// must not depend on timing can wait for a fault's effect: [Proxy.Conns]
// reports open connections and [Proxy.IdleDrops] the idle drops so far.
//
// See the package example for a complete, runnable test body.
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
// reset" mode for a refused backend. The faults tether needs fit in a few
// hundred lines of standard library code, so this package adds nothing to
// the go.mod of a module that uses it.
package faultproxy

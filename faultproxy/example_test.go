package faultproxy_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tetherhq/tether/faultproxy"
)

// This example puts a proxy in front of an echo server, blackholes the path
// and then resets the connection, the way a test of a client's timeouts and
// reconnects would.
func Example() {
	// An echo server stands in for the server under test.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()

	// The proxy goes in front of it; the client dials the proxy.
	p, err := faultproxy.Start(ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	reply, err := echo(c, "hello", 10*time.Second)
	fmt.Printf("echo: %q, %v\n", reply, err)

	// Blackholed, the echo never comes back, and nothing reports an error.
	p.Blackhole(true)
	_, err = echo(c, "lost", 100*time.Millisecond)
	fmt.Println("blackholed, read times out:", errors.Is(err, os.ErrDeadlineExceeded))

	// A reset ends the connection; the client must dial again.
	p.Reset()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	fmt.Println("after Reset, read fails:", err != nil, "- open connections:", p.Conns())

	p.Blackhole(false)
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c2.Close()
	reply, err = echo(c2, "hello again", 10*time.Second)
	fmt.Printf("new connection: %q, %v\n", reply, err)

	// Output:
	// echo: "hello", <nil>
	// blackholed, read times out: true
	// after Reset, read fails: true - open connections: 0
	// new connection: "hello again", <nil>
}

// echo writes msg to c and reads back as many bytes, waiting at most wait.
func echo(c net.Conn, msg string, wait time.Duration) (string, error) {
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

// Net puts the same faults between in-process connections: here a pipe
// with 10ms of latency each way, then a NAT that forgets the idle mapping.
// (In a testing/synctest bubble the same code runs in fake time.)
func ExampleNet() {
	n := faultproxy.NewNet(1)
	defer n.Close()
	c, s := net.Pipe()
	defer s.Close()
	client := n.Wrap(c)
	go func() { // the server echoes
		b := make([]byte, 1)
		for {
			if _, err := s.Read(b); err != nil {
				return
			}
			if _, err := s.Write(b); err != nil {
				return
			}
		}
	}()
	n.SetDelay(10 * time.Millisecond)
	start := time.Now()
	b := make([]byte, 1)
	if _, err := client.Write([]byte("x")); err != nil {
		log.Fatal(err)
	}
	if _, err := io.ReadFull(client, b); err != nil {
		log.Fatal(err)
	}
	fmt.Println("round trip of at least 20ms:", time.Since(start) >= 20*time.Millisecond)

	n.SetIdleTimeout(50 * time.Millisecond)
	for i := 0; n.IdleDrops() == 0 && i < 500; i++ { // within 5s
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("idle drops:", n.IdleDrops())
	// Output:
	// round trip of at least 20ms: true
	// idle drops: 1
}

package client_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

// frameCounter counts the HTTP/2 frames a connection carries, by type, in
// each direction.
type frameCounter struct {
	mu   sync.Mutex
	sent map[http2.FrameType]int // client to server
	got  map[http2.FrameType]int // server to client
}

func newFrameCounter() *frameCounter {
	return &frameCounter{sent: map[http2.FrameType]int{}, got: map[http2.FrameType]int{}}
}

// dial returns a dialer whose connections report their frames to fc.
func (fc *frameCounter) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, fc: fc, out: frameParser{skip: len(http2.ClientPreface), counts: fc.sent}, in: frameParser{counts: fc.got}}, nil
}

// count returns the frames of type t sent and received so far.
func (fc *frameCounter) count(t http2.FrameType) (sent, got int) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.sent[t], fc.got[t]
}

// frameParser follows one direction of an HTTP/2 connection in plaintext
// and counts its frames by type.
type frameParser struct {
	skip   int // bytes still to skip: the preface, or a frame's payload
	head   []byte
	counts map[http2.FrameType]int
}

func (p *frameParser) feed(b []byte) {
	for len(b) > 0 {
		if p.skip > 0 {
			n := min(p.skip, len(b))
			p.skip -= n
			b = b[n:]
			continue
		}
		n := min(9-len(p.head), len(b))
		p.head = append(p.head, b[:n]...)
		b = b[n:]
		if len(p.head) == 9 {
			p.counts[http2.FrameType(p.head[3])]++
			p.skip = int(binary.BigEndian.Uint32(append([]byte{0}, p.head[:3]...)))
			p.head = p.head[:0]
		}
	}
}

type countedConn struct {
	net.Conn
	fc      *frameCounter
	out, in frameParser
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.fc.mu.Lock()
	c.out.feed(b[:n])
	c.fc.mu.Unlock()
	return n, err
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.fc.mu.Lock()
	c.in.feed(b[:n])
	c.fc.mu.Unlock()
	return n, err
}

// TestSparseMessagesCostNoPings: messages a round trip apart, the way a
// session carries them, cost the wire one DATA frame each, and no HTTP/2
// PING either way. With grpc-go's default, its bandwidth estimator sent a
// PING (and a WINDOW_UPDATE) on nearly every such message, and the peer a
// PING ack: the SDK and the server set fixed windows, which turn it off
// (internal/h2window).
func TestSparseMessagesCostNoPings(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	fc := newFrameCounter()
	open := func(id string, opts ...client.Option) *client.Session {
		s, err := client.New(append([]client.Option{client.WithAddrs(addr), client.WithClientID(id),
			client.WithDialOptions(grpc.WithContextDialer(fc.dial))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		if err := s.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	listener := open("listener", client.WithTopics("news"))
	sender := open("sender")
	const n = 20
	for i := range n {
		if err := sender.SendWait(t.Context(), client.Message{Topic: "news", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := listener.Receive(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	sent, got := fc.count(http2.FramePing)
	dataSent, dataGot := fc.count(http2.FrameData)
	// A PING either way counts: the client acks the server's with a PING
	// of its own.
	if sent != 0 || got != 0 {
		t.Errorf("%d sparse messages: the clients sent %d HTTP/2 PINGs and got %d; want none", n, sent, got)
	}
	if dataSent < n || dataGot < n {
		t.Errorf("counted %d DATA frames sent and %d received for %d messages: the counter misses frames", dataSent, dataGot, n)
	}
}

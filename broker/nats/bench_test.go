package nats_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/broker"
	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/natstest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// BenchmarkPublish measures Publish to a client id whose session a
// connected SDK client reads, from the publish call to the message taken by
// the client: on the in-memory broker, on NATS from the node holding the
// session, and on NATS from another node, in both durability modes
// (nats: DurabilityCluster, nats-core: DurabilityNode). Sequential
// publishes wait for each to be stored; parallel ones (16 publishers)
// overlap.
//
//	go test -run '^$' -bench Publish -benchtime 2000x ./broker/nats/
func BenchmarkPublish(b *testing.B) {
	urls := natstest.Start(b).URL()
	setups := []struct {
		name  string
		start func(b *testing.B) (holder, publisher *server.Server, addr string)
	}{
		{"memory", func(b *testing.B) (*server.Server, *server.Server, string) {
			srv, addr := serveMemory(b)
			return srv, srv, addr
		}},
		{"nats/same-node", func(b *testing.B) (*server.Server, *server.Server, string) {
			n := startNode(b, "a", urls, 1)
			return n.srv, n.srv, n.addr
		}},
		{"nats/other-node", func(b *testing.B) (*server.Server, *server.Server, string) {
			n := startNode(b, "a", urls, 1)
			p := startNode(b, "b", urls, 1)
			return n.srv, p.srv, n.addr
		}},
		{"nats-core/same-node", func(b *testing.B) (*server.Server, *server.Server, string) {
			n := startNodeWith(b, "a", urls, nodeDurability())
			return n.srv, n.srv, n.addr
		}},
		{"nats-core/other-node", func(b *testing.B) (*server.Server, *server.Server, string) {
			n := startNodeWith(b, "a", urls, nodeDurability())
			p := startNodeWith(b, "b", urls, nodeDurability())
			return n.srv, p.srv, n.addr
		}},
	}
	payload := make([]byte, 64)
	for _, s := range setups {
		for _, parallel := range []bool{false, true} {
			name := s.name + "/sequential"
			if parallel {
				name = s.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				_, pub, addr := s.start(b)
				ctx := b.Context()
				cs := connect(b, addr, "bench-"+strconv.Itoa(b.N))
				got := make(chan struct{}, 4096)
				go func() {
					for {
						if _, err := cs.Receive(ctx); err != nil {
							return
						}
						got <- struct{}{}
					}
				}()
				to := broker.Client("bench-" + strconv.Itoa(b.N))
				// At most window messages in flight: beyond the server's
				// outbound queue (1024) a reader is cut as a slow consumer.
				const window = 256
				slots := make(chan struct{}, window)
				b.ResetTimer()
				start := time.Now()
				publish := func() {
					slots <- struct{}{}
					if n, err := pub.Publish(ctx, to, payload, ""); n != 1 || err != nil {
						b.Errorf("Publish = %d, %v", n, err)
					}
				}
				published := make(chan struct{})
				go func() {
					defer close(published)
					if parallel {
						b.SetParallelism(8) // 16 publishers on 2 CPUs
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								publish()
							}
						})
						return
					}
					for range b.N {
						publish()
					}
				}()
				for range b.N {
					select {
					case <-got:
						<-slots
					case <-time.After(30 * time.Second):
						b.Fatal("messages stopped arriving")
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
				<-published // the last replies may trail the deliveries
			})
		}
	}
}

func serveMemory(b *testing.B) (*server.Server, string) {
	srv, err := server.New(server.WithLogger(quiet()), server.WithProfile(profile.Datacenter()))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(func() {
		gs.Stop()
		_ = srv.Close()
	})
	return srv, lis.Addr().String()
}

func connect(b *testing.B, addr, id string) *client.Session {
	cs, err := client.New(client.WithAddrs(addr), client.WithClientID(id), client.WithLogger(quiet()), client.WithProfile(profile.Datacenter()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close(context.Background()) })
	if err := cs.Connect(b.Context()); err != nil {
		b.Fatal(err)
	}
	return cs
}

// BenchmarkRelay measures what tether-bench's relay scenario does, in one
// process so that it can be profiled: an SDK session sends b.N messages
// flat out to another session's client id, on one node (the memory broker,
// or NATS) or across two NATS nodes, and the benchmark ends when the last
// has arrived; nats is DurabilityCluster, nats-core DurabilityNode.
//
//	go test -run '^$' -bench Relay -benchtime 5000x ./broker/nats/
func BenchmarkRelay(b *testing.B) {
	urls := natstest.Start(b).URL()
	setups := []struct {
		name  string
		start func(b *testing.B) (from, to string)
	}{
		{"memory", func(b *testing.B) (string, string) {
			_, addr := serveMemory(b)
			return addr, addr
		}},
		{"nats/same-node", func(b *testing.B) (string, string) {
			n := startNode(b, "a", urls, 1)
			return n.addr, n.addr
		}},
		{"nats/other-node", func(b *testing.B) (string, string) {
			n := startNode(b, "a", urls, 1)
			p := startNode(b, "b", urls, 1)
			return p.addr, n.addr
		}},
		{"nats-core/same-node", func(b *testing.B) (string, string) {
			n := startNodeWith(b, "a", urls, nodeDurability())
			return n.addr, n.addr
		}},
		{"nats-core/other-node", func(b *testing.B) (string, string) {
			n := startNodeWith(b, "a", urls, nodeDurability())
			p := startNodeWith(b, "b", urls, nodeDurability())
			return p.addr, n.addr
		}},
	}
	payload := make([]byte, 64)
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			from, to := s.start(b)
			ctx := b.Context()
			id := "relay-to-" + strconv.Itoa(b.N)
			recv := connect(b, to, id)
			send := connect(b, from, "relay-from-"+strconv.Itoa(b.N))
			b.ResetTimer()
			start := time.Now()
			go func() {
				for range b.N {
					if err := send.Send(ctx, client.Message{ClientID: id, Payload: payload}); err != nil {
						return
					}
				}
			}()
			for range b.N {
				if _, err := recv.Receive(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPublishSessions measures Publish to 16 client ids at once, each
// the session of a connected SDK client on one node, from 16 publishers
// (one per client id) on the same node or another: what a node's dispatch
// does for many sessions, where BenchmarkPublish measures one.
//
//	go test -run '^$' -bench PublishSessions -benchtime 4000x ./broker/nats/
func BenchmarkPublishSessions(b *testing.B) {
	urls := natstest.Start(b).URL()
	const sessions = 16
	payload := make([]byte, 64)
	for _, across := range []bool{false, true} {
		name := "nats/same-node"
		if across {
			name = "nats/other-node"
		}
		b.Run(name, func(b *testing.B) {
			n := startNode(b, "a", urls, 1)
			pub := n.srv
			if across {
				pub = startNode(b, "b", urls, 1).srv
			}
			ctx := b.Context()
			got := make(chan struct{}, 4096)
			ids := make([]string, sessions)
			for i := range ids {
				ids[i] = "many-" + strconv.Itoa(b.N) + "-" + strconv.Itoa(i)
				cs := connect(b, n.addr, ids[i])
				go func() {
					for {
						if _, err := cs.Receive(ctx); err != nil {
							return
						}
						got <- struct{}{}
					}
				}()
			}
			b.ResetTimer()
			start := time.Now()
			var publishers sync.WaitGroup
			for i, id := range ids {
				publishers.Go(func() {
					to := broker.Client(id)
					for range b.N/sessions + min(1, max(0, b.N%sessions-i)) {
						if n, err := pub.Publish(ctx, to, payload, ""); n != 1 || err != nil {
							b.Errorf("Publish = %d, %v", n, err)
							return
						}
					}
				})
			}
			for range b.N {
				select {
				case <-got:
				case <-time.After(30 * time.Second):
					b.Fatal("messages stopped arriving")
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			publishers.Wait() // the last replies may trail the deliveries
		})
	}
}

// nodeDurability returns the broker options of startNode in DurabilityNode.
func nodeDurability() natsbroker.Options {
	return natsbroker.Options{Replicas: 1, Timeout: 3 * time.Second, Logger: quiet(), Durability: natsbroker.DurabilityNode}
}

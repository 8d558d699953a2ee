package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	"github.com/tetherhq/tether/agent"
	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/server"
)

// A shell script's request rides the agent's session to a service that
// answers it.
func Example() {
	// A tether server on loopback, as tetherd would run it.
	srv, _ := server.New()
	_ = srv.Start(context.Background())
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	srv.Register(gs)
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go gs.Serve(lis)
	defer func() { gs.Stop(); srv.Close() }()
	addr := lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A service answering on svc.greet, as tether reply would.
	svc, _ := client.New(client.WithAddrs(addr), client.WithTopics("svc.greet"))
	defer svc.Close(context.Background())
	_ = svc.Connect(ctx)
	go func() {
		for {
			req, err := svc.Receive(ctx)
			if err != nil {
				return
			}
			_ = svc.Reply(ctx, req, []byte("hello, "+string(req.Payload)))
		}
	}()

	// The agent, on a Unix socket only this user can reach.
	a, _ := agent.New([]client.Option{client.WithAddrs(addr), client.WithClientID("web-1")})
	dir, _ := os.MkdirTemp("", "agent-example-")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	l, err := agent.ListenUnix(sock)
	if err != nil {
		panic(err)
	}
	go a.Serve(l)
	defer a.Shutdown(context.Background())

	// curl --unix-socket agent.sock --json '{"topic":"svc.greet","payload":"world"}' http://agent/v1/request
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://agent/v1/request", "application/json", strings.NewReader(`{"topic":"svc.greet","payload":"world"}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, strings.Contains(string(body), `"payload":"hello, world"`))
	// Output:
	// 200 OK true
}

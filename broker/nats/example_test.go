package nats_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	"github.com/tetherhq/tether/server"
)

// A tether node on a shared NATS broker. Every node started this way, with
// the same NATS system and prefix, shares sessions with the others. Here
// an embedded NATS server stands in for a real one.
func ExampleConnect() {
	dir, err := os.MkdirTemp("", "nats")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		log.Fatal("nats-server did not start")
	}

	b, err := natsbroker.Connect(ns.ClientURL(), natsbroker.Options{Replicas: 1})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.WithServerID("node-1"), server.WithBroker(b))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close() // closes the broker and its connection too
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil { // creates the JetStream streams
		log.Fatal(err)
	}
	fmt.Println("shared:", b.Shared())
	// Output: shared: true
}

// Package flow holds the end-to-end flow-control tests: a producer faster
// than its consumer, on a default server with the stock SDK, through the
// memory broker and through NATS. The package has tests only.
package flow

// Package natstest starts embedded NATS servers, with JetStream, for tests:
// one server ([Start]) or a cluster ([StartCluster]), in-process, on
// 127.0.0.1 and ephemeral ports, each stopped and waited for when its test
// ends. A server can be shut down and restarted on the same ports, name and
// store directory, to test what happens to clients while it is away.
//
// The servers log nothing unless the environment variable TETHER_NATS_LOG
// is 1; then they log to stderr, each line prefixed with the server's name.
package natstest

// Package chaos holds tether's chaos suite: three tether nodes on embedded
// NATS (one server, and a three-server cluster with replicas 3), or one
// node on the memory broker, a fault proxy between the sessions and each
// node, and sessions sending numbered messages both ways while a fault
// strikes: reset pulses, kill -9 of the receiver's node (with Send and
// with SendWait), a rolling restart, the NATS server a node uses killed,
// NATS down for 10 s. Each case checks its broker's promise. The harness
// is internal/chaos; tether-bench chaos runs the same cases larger.
//
// Run it with
//
//	go test -race -v -run TestChaos ./test/chaos/
package chaos

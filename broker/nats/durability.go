package nats

import (
	"fmt"
	"strings"
)

// Durability says where a session's outbound log lives: what a session
// keeps when it resumes on another node, and what each message costs. See
// the package documentation, "Durability".
type Durability string

// The durability modes.
const (
	// DurabilityCluster, the default, stores every session's log in
	// JetStream: a session resumes on any node, after its node died too,
	// and loses nothing. Each message to a session costs a JetStream
	// append, acknowledged before the message goes out.
	DurabilityCluster Durability = "cluster"
	// DurabilityNode keeps every session's log in the memory of the node
	// holding the session, as package memory does, and routes between
	// nodes over core NATS only: no JetStream write per message. A
	// session resumed on its node loses nothing; resumed on another node
	// (its node died, drained, or the client moved) it loses the messages
	// it had not acknowledged, and the resume says so: Welcome.resume_status
	// RESUMED_WITH_GAP, Welcome.lost naming the range.
	DurabilityNode Durability = "node"
)

// ParseDurability returns the mode named s: "cluster" or "node" (case
// insensitive); "" is the default, DurabilityCluster.
func ParseDurability(s string) (Durability, error) {
	switch Durability(strings.ToLower(s)) {
	case "", DurabilityCluster:
		return DurabilityCluster, nil
	case DurabilityNode:
		return DurabilityNode, nil
	}
	return "", fmt.Errorf("tether/broker/nats: durability %q: use %q (logs in JetStream, resume anywhere, lose nothing) or %q (logs in the node's memory, no JetStream write per message; a resume on another node loses what was unacknowledged and reports it)", s, DurabilityCluster, DurabilityNode)
}

// String returns "cluster" or "node".
func (d Durability) String() string { return string(d) }

// Package chaos is the harness of tether's chaos suite (test/chaos) and of
// tether-bench chaos: it runs tether nodes, puts a faultproxy in front of
// each, drives numbered messages both ways through SDK sessions, strikes
// with a fault, and counts what was lost, duplicated and reordered.
//
// # Setup
//
// A [Case] is one fault on one [Broker]: three tether nodes on one
// embedded NATS server ([NATS]) or on a three-server cluster with replicas
// 3 ([NATSCluster]), or one node on the memory broker ([Memory]; memory
// nodes cannot route to each other). Sessions connect through the proxies
// with client ids, plus one checker session:
//
//   - server→client: a publisher per session calls the Publish RPC, directly
//     on a node, to the session's client id, with an idempotency key,
//     moving to the next node on an error or when no session was reached;
//   - client→server: each session sends to the checker's client id with
//     Send, or with SendWait (re-sent with its key when the server reports
//     a failure).
//
// Every message carries its stream and number, so the receiver counts
// what arrives twice and what arrives after a later one. After the
// traffic, the harness waits, within [Size].Settle, until every session
// is back with nothing pending and nothing more arrives; what never
// arrived is lost. A loss is reported when its sender was told (an error
// or a no-session answer it gave up on) or its receiver was (its session
// came back not resumed, or with a lost range; see [Tally.ReceiverTold]).
//
// # Promises
//
// [Result.Violations] checks the broker's promise: on NATS no message is
// lost, duplicated or reordered; on the memory broker every loss is
// reported to its sender or its receiver. On both, every session is back
// in time and none ends for good.
//
// # Running
//
// Tests call [Run] with their *testing.T and [Small]; tether-bench calls
// [RunStandalone] with [Large] or its flags. [Markdown] renders the table.
package chaos

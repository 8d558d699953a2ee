// Package livebench measures issue 19's liveness in fake time
// (testing/synctest): heartbeats per hour behind a NAT for the fixed and
// the adaptive heartbeat, and dead-peer detection time against round-trip
// time for the fixed and the RTT-derived timeout. Its test asserts the
// goals; with -update it also writes the figures and tables under
// bench/results (liveness-nat.*, liveness-detection.*), which BENCHMARKS.md
// shows:
//
//	cd bench && go test ./internal/livebench -run TestFigures -update
package livebench

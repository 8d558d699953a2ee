// Package liveness holds the mechanics of tether's liveness that the server
// and the client SDK share: the RTT estimator ([RTT]), the RTT-derived
// dead-peer timeout ([Timeout]) and the adaptive heartbeat's search for the
// longest interval a path keeps alive ([Learner]). The parameters live in
// the public profile package; the wire format of each number is documented
// in proto/tether/v1 (Liveness, RttTimeout, SetHeartbeat).
package liveness

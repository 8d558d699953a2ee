package profile

import (
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// CommonNATIdle is the idle timer of many NATs, mobile carrier gateways and
// load balancers: a connection that carries no packet for this long may lose
// its mapping without either end being told. [Table] reports NAT safety
// against it.
const CommonNATIdle = 30 * time.Second

// Heartbeat is the app-level heartbeat policy: ping and pong frames on the
// session stream. None of its fields has a default; the zero value is
// invalid.
type Heartbeat struct {
	// Interval is the heartbeat interval granted to a client that does not
	// ask for one: a side sends a ping once it has been write-idle this
	// long.
	Interval time.Duration
	// Misses is how many intervals of silence make the peer dead. It must
	// be 1 or more.
	Misses int
	// Grace is added to Interval × Misses before the peer is declared dead,
	// to absorb the last pong's round trip, a GC pause and the sweep's
	// scheduling delay. It must not be negative.
	Grace time.Duration
	// Min and Max bound the interval a client may ask for in hello. Min
	// protects the server from ping floods; Max lets a quiet client (a
	// grpcurl user, a backgrounded app) trade detection speed for traffic.
	Min, Max time.Duration
	// RTTMultiplier turns on the RTT-derived dead-peer timeout when above
	// zero: once a side has a round-trip sample, it declares its peer dead
	// after min(Interval × Misses + Grace, Interval + max(RTTFloor,
	// RTTMultiplier × (SRTT + 4·RTTVAR))) of silence (SRTT and RTTVAR as
	// TCP keeps them, RFC 6298). Zero keeps the fixed Interval × Misses +
	// Grace. See [Profile.RTTDetectionTime].
	RTTMultiplier int
	// RTTFloor is the least silence past the interval before a peer is
	// declared dead under the RTT-derived timeout. It must be positive
	// when RTTMultiplier is, and Interval + RTTFloor must not exceed
	// Interval × Misses + Grace.
	RTTFloor time.Duration
	// Adaptive turns on the SDK's adaptive heartbeat: it learns the longest
	// interval the path keeps alive (between Interval and Max), and tells
	// the server. The server ignores it.
	Adaptive bool
}

// Profile is one liveness policy for all three layers: app heartbeat, gRPC
// transport keepalive and TCP keepalive. It is a plain value: copies are
// independent, and a Profile that nobody modifies is safe for concurrent use.
// The constructors ([Datacenter], [Default], [Mobile], [Lookup]) return a
// fresh value on each call; check any other value with [Profile.Validate].
type Profile struct {
	// Name identifies the profile in flags, logs and [Table].
	Name string
	// Heartbeat is the app heartbeat policy.
	Heartbeat Heartbeat
	// Server is the gRPC server's transport keepalive and connection
	// management. Its Timeout is also the TCP_USER_TIMEOUT grpc-go sets on
	// every accepted connection.
	Server keepalive.ServerParameters
	// Enforcement is the server's ping policing. Its MinTime is the floor
	// announced to clients in welcome.
	Enforcement keepalive.EnforcementPolicy
	// Client is the SDK's transport keepalive. Its Time is at least 10 s
	// (grpc-go's floor) and at least twice Enforcement.MinTime; its Timeout
	// is also the client's TCP_USER_TIMEOUT.
	Client keepalive.ClientParameters
	// TCP is the kernel keepalive for the server's listener and the SDK's
	// dialer: a dead peer is found after Idle + Interval × Count of silence.
	// On Linux the TCP_USER_TIMEOUT that grpc-go sets also bounds keepalive
	// probing (tcp(7)), so the connection can end before Count probes.
	TCP net.KeepAliveConfig
}

// DetectionTime is the worst-case time for the app heartbeat to find a dead
// peer: Interval × Misses + Grace of silence after the last frame received.
func (p Profile) DetectionTime() time.Duration {
	return p.Heartbeat.Interval*time.Duration(p.Heartbeat.Misses) + p.Heartbeat.Grace
}

// RTTDetectionTime is the time the app heartbeat takes to find a dead peer
// on a path whose smoothed round-trip time is srtt and its variation
// rttvar: Interval + max(RTTFloor, RTTMultiplier × (srtt + 4·rttvar)),
// at most [Profile.DetectionTime]; DetectionTime when the RTT-derived
// timeout is off.
func (p Profile) RTTDetectionTime(srtt, rttvar time.Duration) time.Duration {
	h := p.Heartbeat
	if h.RTTMultiplier <= 0 {
		return p.DetectionTime()
	}
	past := max(h.RTTFloor, time.Duration(h.RTTMultiplier)*(srtt+4*rttvar))
	return min(p.DetectionTime(), h.Interval+past)
}

// HeartbeatsPerHour is the number of heartbeat pings one side sends during
// an hour of an idle session (no messages either way): one per Interval of
// write-idleness. Pongs are not counted. The other side sends at most as
// many pings of its own, and each ping draws one pong, so an idle session
// carries between one and two times this many pings, plus as many pongs. On
// a busy stream no heartbeat is sent at all.
func (p Profile) HeartbeatsPerHour() float64 {
	return float64(time.Hour) / float64(p.Heartbeat.Interval)
}

// NATSafe reports whether an idle session sends traffic more often than a
// NAT or load-balancer idle timer of idle expires, so the middlebox never
// drops the mapping. Only the app heartbeat is counted: HTTP/2 PINGs and TCP
// probes end at the first L7 proxy, while heartbeat frames cross every hop.
// Each side sends one once it has been write-idle for Interval, so the
// longest silence in either direction is Interval, which must be shorter
// than idle.
func (p Profile) NATSafe(idle time.Duration) bool {
	return p.Heartbeat.Interval < idle
}

// ServerOptions returns the grpc.Server options for the transport layer:
// keepalive parameters and the enforcement policy.
func (p Profile) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(p.Server),
		grpc.KeepaliveEnforcementPolicy(p.Enforcement),
	}
}

// DialOptions returns the grpc client options for the transport layer: the
// client keepalive parameters.
func (p Profile) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithKeepaliveParams(p.Client)}
}

// ListenConfig returns a net.ListenConfig whose accepted TCP connections use
// the profile's kernel keepalive. When p.TCP.Enable is false, keepalive is
// switched off rather than left at Go's 15 s default.
func (p Profile) ListenConfig() net.ListenConfig {
	return net.ListenConfig{KeepAlive: p.keepAlivePeriod(), KeepAliveConfig: p.TCP}
}

// Dialer returns a net.Dialer whose TCP connections use the profile's kernel
// keepalive, for the SDK's grpc.WithContextDialer. When p.TCP.Enable is
// false, keepalive is switched off rather than left at Go's 15 s default.
func (p Profile) Dialer() net.Dialer {
	return net.Dialer{KeepAlive: p.keepAlivePeriod(), KeepAliveConfig: p.TCP}
}

// keepAlivePeriod is the legacy KeepAlive field for net.Dialer and
// net.ListenConfig: ignored when p.TCP.Enable is true, and negative
// (disabled) otherwise, since zero would mean Go's default.
func (p Profile) keepAlivePeriod() time.Duration {
	if p.TCP.Enable {
		return 0
	}
	return -1
}

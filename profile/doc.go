// Package profile defines named liveness profiles: one policy that sets all
// three liveness layers of a tether session at once.
//
// # Layers
//
// A [Profile] holds, side by side:
//
//   - the app heartbeat ([Heartbeat]): ping/pong frames on the session stream.
//     Each side sends a ping once it has been write-idle for the interval, any
//     frame received counts as life, and a peer is dead after
//     Interval × Misses + Grace of silence. It is negotiated in hello/welcome
//     within Heartbeat.Min and Heartbeat.Max. It is the only layer whose
//     traffic crosses every hop, including L7 proxies and load balancers.
//   - gRPC transport keepalive (HTTP/2 PING): [keepalive.ServerParameters] and
//     [keepalive.EnforcementPolicy] for the server, [keepalive.ClientParameters]
//     for the SDK. It is a backstop: in a healthy session the heartbeat keeps
//     both sides reading, so transport pings never fire.
//   - TCP keepalive (kernel probes): [net.KeepAliveConfig] for the listener
//     and the SDK's dialer, so that the OS default of two hours never applies.
//
// # Profiles
//
// Three profiles are built in: [Datacenter] (dead peers found in seconds),
// [Default] (under a minute, the grpc-go baseline this project recommends) and
// [Mobile] (below the common 30 s NAT idle timer, gentle on batteries and
// lossy links). [Lookup] finds one by name, for flags and config files, and
// [Table] renders their numbers as the Markdown table the README shows:
//
//	fmt.Print(profile.Table(profile.Datacenter(), profile.Default(), profile.Mobile()))
//
// Wire a profile into grpc and net with [Profile.ServerOptions],
// [Profile.DialOptions], [Profile.ListenConfig] and [Profile.Dialer]. Check
// a hand-made or edited profile with [Profile.Validate] before use: it rejects
// the combinations that make grpc-go close connections (too_many_pings),
// silently change a setting (the 10 s client floor, zero meaning a default) or
// leave a layer at a uselessly slow default.
//
// # Too many pings
//
// A grpc-go server answers a client that pings more often than
// [keepalive.EnforcementPolicy.MinTime] with GOAWAY "too_many_pings", which
// kills every stream on the connection; the client then doubles its
// keepalive time and tries again, losing the session at each step. Every
// built-in profile keeps [keepalive.ClientParameters.Time] at least twice
// MinTime, and the tests run each profile's client against its own server
// for an hour of fake time to prove it.
package profile

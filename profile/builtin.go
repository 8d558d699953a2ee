package profile

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/keepalive"
)

// ErrUnknownProfile is returned, wrapped, by [Lookup] for a name that is not
// a built-in profile.
var ErrUnknownProfile = errors.New("profile: unknown profile")

// builtins lists the built-in profiles in the order [Names] reports them.
var builtins = []struct {
	name string
	make func() Profile
}{
	{"datacenter", Datacenter},
	{"default", Default},
	{"mobile", Mobile},
}

// Names returns the names of the built-in profiles, in a fresh slice:
// "datacenter", "default", "mobile".
func Names() []string {
	names := make([]string, len(builtins))
	for i, b := range builtins {
		names[i] = b.name
	}
	return names
}

// Lookup returns a fresh copy of the built-in profile with the given name.
// For any other name it returns an error that wraps [ErrUnknownProfile] and
// lists the valid names.
func Lookup(name string) (Profile, error) {
	for _, b := range builtins {
		if b.name == name {
			return b.make(), nil
		}
	}
	return Profile{}, fmt.Errorf("%w %q (valid: %s)", ErrUnknownProfile, name, strings.Join(Names(), ", "))
}

// Datacenter is for services talking inside one datacenter or region:
// sub-millisecond RTTs, no NAT, no batteries. It finds a dead peer in
// seconds.
//
//   - Heartbeat 1 s × 3 misses + 500 ms grace: dead after at most 3.5 s.
//     With the RTT-derived timeout (multiplier 3, floor 1 s), a peer is dead
//     after 1 s + max(1 s, 3 × (SRTT + 4·RTTVAR)) of silence once an RTT was
//     measured: 2 s at loopback or datacenter RTTs, and still 2 s with
//     50 ms ± 30 ms of jitter (3 × (SRTT + 4·RTTVAR) stays under 1 s); only
//     a path with RTTs of a few hundred ms waits longer, up to the 3.5 s
//     bound. The 1 s floor rides out a GC pause or a brief stall. 3600
//     pings per hour per side is nothing for a server NIC. Clients may ask
//     for 1 s to 30 s.
//   - Enforcement.MinTime 5 s, Client.Time 10 s: grpc-go raises any client
//     Time below 10 s to 10 s, so 10 s is the fastest transport ping there
//     is, and MinTime 5 s is half of it, leaving the margin that keeps
//     too_many_pings away. Client.Timeout 5 s, several thousand RTTs; it is
//     also the TCP_USER_TIMEOUT.
//   - Server.Time 10 s / Timeout 5 s: a stream-less or health-only connection
//     that goes silent is closed within 15 s. Heartbeats keep session
//     connections read-busy, so these pings never fire there.
//   - MaxConnectionIdle 5 m, MaxConnectionAge 10 m, Grace 1 m: reconnecting
//     costs under a millisecond here, so connections rebalance onto new
//     backends quickly after a scale-out; one minute is far more than a
//     client needs to migrate after go_away.
//   - TCP keepalive 2 s idle, 1 s interval, 2 probes (about 4 s): matched to
//     the heartbeat's detection bound. The socket of a heartbeating session
//     is never idle for 2 s, so probes only go out when the heartbeat has
//     stopped.
func Datacenter() Profile {
	return Profile{
		Name: "datacenter",
		Heartbeat: Heartbeat{
			Interval:      time.Second,
			Misses:        3,
			Grace:         500 * time.Millisecond,
			Min:           time.Second,
			Max:           30 * time.Second,
			RTTMultiplier: 3,
			RTTFloor:      time.Second,
		},
		Server: keepalive.ServerParameters{
			MaxConnectionIdle:     5 * time.Minute,
			MaxConnectionAge:      10 * time.Minute,
			MaxConnectionAgeGrace: time.Minute,
			Time:                  10 * time.Second,
			Timeout:               5 * time.Second,
		},
		Enforcement: keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true},
		Client:      keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true},
		TCP:         net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 2},
	}
}

// Default is for clients across the internet: desktops, agents, services in
// other networks. It finds a dead peer in under a minute and follows the
// baseline in GRPC-NOTES.md.
//
//   - Heartbeat 15 s × 3 misses + 5 s grace: dead after at most 50 s. 15 s
//     stays below the common 30 s NAT idle timer with room for a delayed
//     sweep. With the RTT-derived timeout (multiplier 3, floor 5 s) a peer
//     is dead after 15 s + max(5 s, 3 × (SRTT + 4·RTTVAR)) once an RTT was
//     measured: 20 s on most paths, longer (up to 50 s) only on one whose
//     round trips are long or vary a lot, such as an intercontinental
//     path. 240 pings per hour per side. Clients may ask for 5 s to 5 m (a
//     hand-driven grpcurl session asks for the long end).
//   - Enforcement.MinTime 10 s, Client.Time 30 s / Timeout 20 s: the client
//     pings at three times the floor, never near too_many_pings. The 20 s
//     timeout (also the TCP_USER_TIMEOUT) is many RTTs even on a poor path.
//   - Server.Time 1 m / Timeout 20 s: the backstop for a silent connection
//     with no heartbeat on it; grpc-go's own default Time is 2 h.
//   - MaxConnectionIdle 15 m, MaxConnectionAge 30 m, Grace 5 m: idle
//     connections are reclaimed, long-lived ones are pushed to re-resolve
//     and rebalance twice an hour, and the finite grace is the hard backstop
//     for a client that ignores go_away.
//   - TCP keepalive 30 s idle, 5 s interval, 4 probes (50 s): the same
//     detection time as the heartbeat; never the OS default of two hours.
func Default() Profile {
	return Profile{
		Name: "default",
		Heartbeat: Heartbeat{
			Interval:      15 * time.Second,
			Misses:        3,
			Grace:         5 * time.Second,
			Min:           5 * time.Second,
			Max:           5 * time.Minute,
			RTTMultiplier: 3,
			RTTFloor:      5 * time.Second,
		},
		Server: keepalive.ServerParameters{
			MaxConnectionIdle:     15 * time.Minute,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 5 * time.Minute,
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
		},
		Enforcement: keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true},
		Client:      keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true},
		TCP:         net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 4},
	}
}

// Mobile is for phones and other devices on cellular or flaky Wi-Fi, behind
// carrier NATs, on batteries.
//
//   - Heartbeat 25 s × 3 misses + 10 s grace: dead after 85 s. 25 s is the
//     longest interval that keeps a 30 s NAT idle timer from expiring, with
//     5 s of headroom for sweep slack; each heartbeat wakes the radio, so
//     the interval is as long as NAT safety allows (144 pings per hour per
//     side, and the server's pings wake the device too). The 10 s grace
//     absorbs cellular RTT spikes: radio promotion from idle, handovers,
//     bufferbloat. Clients may ask for 10 s to 5 m: a backgrounded app can
//     trade NAT safety and detection for battery.
//   - Adaptive heartbeat: the SDK starts at 25 s and learns the longest
//     interval the path keeps alive (up to the 5 m maximum), so behind a
//     NAT that forgets after 120 s it heartbeats about every 115 s: 31
//     pings per hour instead of 144. The server's dead-after follows the
//     interval the SDK announces.
//   - RTT-derived timeout (multiplier 3, floor 10 s): once an RTT was
//     measured, a peer is dead 10 s (or 3 × (SRTT + 4·RTTVAR), if longer)
//     after a heartbeat that did not come: 35 s at the 25 s interval, and a
//     heartbeat the NAT swallowed while the SDK probes a longer interval
//     is found 10 s after it, not two intervals later.
//   - Enforcement.MinTime 10 s, Client.Time 1 m / Timeout 30 s: the
//     transport ping is a rare backstop (the heartbeat keeps the client
//     reading every 25 s); MinTime matches Default so a Mobile server also
//     accepts Default clients. The generous 30 s timeout (also the
//     TCP_USER_TIMEOUT) avoids spurious disconnects on lossy links.
//     Client.PermitWithoutStream is off: a connection with no stream does
//     not wake the radio.
//   - Server.Time 6 m / Timeout 30 s: a rare backstop for silent
//     connections, with the same lossy-link allowance. Above the 5 m
//     maximum heartbeat, so that no transport ping wakes the radio (or
//     keeps a NAT's mapping alive) between adaptive heartbeats; the SDK
//     likewise keeps its own transport ping above 1.5 × that maximum.
//   - MaxConnectionIdle 5 m, MaxConnectionAge 2 h, Grace 10 m: stream-less
//     connections are not pinged, so a NAT has usually dropped them long
//     before 5 m; each migration costs a radio wake-up and a handshake over
//     a slow link, so rebalancing is rare, and a suspended app gets 10 m to
//     act on go_away.
//   - TCP keepalive 45 s idle, 10 s interval, 4 probes (85 s): the same
//     detection time as the heartbeat. A heartbeating socket is never idle
//     for 45 s, so probes cost no battery on a healthy session.
func Mobile() Profile {
	return Profile{
		Name: "mobile",
		Heartbeat: Heartbeat{
			Interval:      25 * time.Second,
			Misses:        3,
			Grace:         10 * time.Second,
			Min:           10 * time.Second,
			Max:           5 * time.Minute,
			RTTMultiplier: 3,
			RTTFloor:      10 * time.Second,
			Adaptive:      true,
		},
		Server: keepalive.ServerParameters{
			MaxConnectionIdle:     5 * time.Minute,
			MaxConnectionAge:      2 * time.Hour,
			MaxConnectionAgeGrace: 10 * time.Minute,
			Time:                  6 * time.Minute,
			Timeout:               30 * time.Second,
		},
		Enforcement: keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true},
		Client:      keepalive.ClientParameters{Time: time.Minute, Timeout: 30 * time.Second},
		TCP:         net.KeepAliveConfig{Enable: true, Idle: 45 * time.Second, Interval: 10 * time.Second, Count: 4},
	}
}

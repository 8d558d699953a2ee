package profile

import (
	"errors"
	"fmt"
	"time"
)

// clientKeepaliveFloor is grpc-go's minimum client keepalive Time: smaller
// values, zero included, are raised to it (grpc.WithKeepaliveParams).
const clientKeepaliveFloor = 10 * time.Second

// serverKeepaliveFloor is grpc-go's minimum server keepalive Time: smaller
// non-zero values are raised to it, and zero means two hours.
const serverKeepaliveFloor = time.Second

// Validate reports every inconsistency in p, joined with [errors.Join], or
// nil. Each message names the field and says what to change. It checks that:
//
//   - the heartbeat has at least one miss, a non-negative grace, positive
//     bounds with Min ≤ Max, and an interval inside them; an RTT-derived
//     timeout has a positive floor within the fixed detection bound;
//   - Enforcement.MinTime is set (zero means grpc-go's 5 m, which kills
//     faster pingers), and Client.Time is at least 10 s (grpc-go raises
//     anything lower, and zero means 10 s, not off) and at least twice
//     MinTime, so the server never answers with too_many_pings;
//   - client pings without a stream are permitted by the server if the
//     client sends them;
//   - Server.Time is at least 1 s and both keepalive Timeouts are set (each
//     is also a TCP_USER_TIMEOUT);
//   - both keepalive Times exceed the heartbeat interval, so transport pings
//     stay a backstop and add nothing to a healthy idle session (with an
//     adaptive heartbeat, Server.Time exceeds the maximum interval);
//   - no server duration is negative, and a MaxConnectionAge comes with a
//     finite MaxConnectionAgeGrace;
//   - enabled TCP keepalive has explicit idle and interval times of whole
//     seconds (never Go's 15 s or the OS's 2 h defaults) and a count of 1
//     or more.
func (p Profile) Validate() error {
	v := validator{name: p.Name}
	if p.Name == "" {
		v.fail("Name is empty: give the profile a name")
	}
	v.heartbeat(p.Heartbeat)
	v.transport(p)
	v.tcp(p)
	return errors.Join(v.errs...)
}

// namedDuration is a duration field and its name, for checks that loop.
type namedDuration struct {
	field string
	value time.Duration
}

// validator collects the violations of one profile.
type validator struct {
	name string
	errs []error
}

func (v *validator) fail(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("profile %q: %s", v.name, fmt.Sprintf(format, args...)))
}

func (v *validator) heartbeat(h Heartbeat) {
	if h.Misses < 1 {
		v.fail("Heartbeat.Misses is %d: set it to 1 or more (3 tolerates two late heartbeats)", h.Misses)
	}
	if h.Grace < 0 {
		v.fail("Heartbeat.Grace is %v: set it to 0 or more", h.Grace)
	}
	if h.Min <= 0 {
		v.fail("Heartbeat.Min is %v: set a positive lower bound for the interval a client may ask for", h.Min)
	}
	if h.Max < h.Min {
		v.fail("Heartbeat.Max %v is below Heartbeat.Min %v: raise Max or lower Min", h.Max, h.Min)
	}
	if h.RTTMultiplier < 0 {
		v.fail("Heartbeat.RTTMultiplier is %d: set it to 0 (fixed detection) or more (3 is tether's)", h.RTTMultiplier)
	}
	if h.RTTMultiplier > 0 && h.RTTFloor <= 0 {
		v.fail("Heartbeat.RTTFloor is %v while RTTMultiplier is %d: set a positive floor (the least silence past the interval before a peer is dead)", h.RTTFloor, h.RTTMultiplier)
	}
	if h.RTTMultiplier > 0 && h.Interval+h.RTTFloor > h.Interval*time.Duration(max(h.Misses, 1))+h.Grace {
		v.fail("Heartbeat.Interval %v + RTTFloor %v exceeds Interval × Misses + Grace, the detection bound: lower RTTFloor or raise Misses or Grace", h.Interval, h.RTTFloor)
	}
	if h.Interval < h.Min || h.Interval > h.Max {
		v.fail("Heartbeat.Interval %v is outside [Min %v, Max %v]: move it inside the bounds or widen them", h.Interval, h.Min, h.Max)
	}
}

func (v *validator) transport(p Profile) {
	minTime := p.Enforcement.MinTime
	if minTime <= 0 {
		v.fail("Enforcement.MinTime is %v: set it explicitly (e.g. 10s); zero means grpc-go's 5m, and clients pinging more often get too_many_pings", minTime)
	}
	c := p.Client
	if c.Time < clientKeepaliveFloor {
		v.fail("Client.Time is %v: set it to %v or more; grpc-go raises lower values to %v, and zero means %v pings, not off", c.Time, clientKeepaliveFloor, clientKeepaliveFloor, clientKeepaliveFloor)
	}
	if minTime > 0 && c.Time < 2*minTime {
		v.fail("Client.Time %v is less than twice Enforcement.MinTime %v, risking too_many_pings: raise Client.Time to %v or lower MinTime to %v", c.Time, minTime, 2*minTime, c.Time/2)
	}
	if c.PermitWithoutStream && !p.Enforcement.PermitWithoutStream {
		v.fail("Client.PermitWithoutStream is set but Enforcement.PermitWithoutStream is not, so pings on a connection without streams count as strikes (too_many_pings): set Enforcement.PermitWithoutStream or clear Client.PermitWithoutStream")
	}
	if c.Timeout <= 0 {
		v.fail("Client.Timeout is %v: set it explicitly (e.g. 20s); it is also the client's TCP_USER_TIMEOUT", c.Timeout)
	}
	s := p.Server
	if s.Time < serverKeepaliveFloor {
		v.fail("Server.Time is %v: set it to %v or more; zero means grpc-go's 2h", s.Time, serverKeepaliveFloor)
	}
	if s.Timeout <= 0 {
		v.fail("Server.Timeout is %v: set it explicitly (e.g. 20s); it is also the server's TCP_USER_TIMEOUT", s.Timeout)
	}
	interval := p.Heartbeat.Interval
	if c.Time <= interval {
		v.fail("Client.Time %v is not above Heartbeat.Interval %v, so transport pings would run on every healthy idle session: raise Client.Time above the interval", c.Time, interval)
	}
	if s.Time <= interval {
		v.fail("Server.Time %v is not above Heartbeat.Interval %v, so transport pings would run on every healthy idle session: raise Server.Time above the interval", s.Time, interval)
	}
	if p.Heartbeat.Adaptive && s.Time <= p.Heartbeat.Max {
		v.fail("Server.Time %v is not above Heartbeat.Max %v while Heartbeat.Adaptive is set, so transport pings would keep a NAT's mapping alive between adaptive heartbeats (waking the radio, and hiding the NAT's timer from the search): raise Server.Time above Max", s.Time, p.Heartbeat.Max)
	}
	for _, d := range []namedDuration{
		{"MaxConnectionIdle", s.MaxConnectionIdle},
		{"MaxConnectionAge", s.MaxConnectionAge},
		{"MaxConnectionAgeGrace", s.MaxConnectionAgeGrace},
	} {
		if d.value < 0 {
			v.fail("Server.%s is %v: set it to 0 (infinite) or a positive duration", d.field, d.value)
		}
	}
	if s.MaxConnectionAge > 0 && s.MaxConnectionAgeGrace == 0 {
		v.fail("Server.MaxConnectionAgeGrace is 0 (infinite) while MaxConnectionAge is %v, so a client that ignores go_away holds its connection forever: set a finite grace (e.g. 5m)", s.MaxConnectionAge)
	}
}

func (v *validator) tcp(p Profile) {
	t := p.TCP
	if !t.Enable {
		return
	}
	for _, d := range []namedDuration{{"Idle", t.Idle}, {"Interval", t.Interval}} {
		if d.value < time.Second || d.value%time.Second != 0 {
			v.fail("TCP.%s is %v: set a whole number of seconds, 1s or more; the kernel counts in seconds, 0 means Go's 15s and a negative value the OS default (2h on Linux)", d.field, d.value)
		}
	}
	if t.Count < 1 {
		v.fail("TCP.Count is %d: set it to 1 or more; 0 means Go's 9 and a negative value the OS default", t.Count)
	}
}
